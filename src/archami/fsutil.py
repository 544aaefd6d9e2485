"""Small filesystem helpers shared by stages that prepare an image root."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def empty_dir(directory: Path) -> None:
    """Remove a directory's contents but keep it (caches the image expects to exist); symlinks are not followed."""
    if not directory.is_dir() or directory.is_symlink():
        return
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def allocated_bytes(path: Path) -> int:
    """Bytes the filesystem has allocated to a (sparse) file, after flushing it: before writeback, ext4's
    delayed allocation has not yet placed the blocks or the extent tree, so st_blocks can still grow."""
    with path.open("rb") as f:
        os.fsync(f.fileno())
        return os.fstat(f.fileno()).st_blocks * 512


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges holding data, per the filesystem's allocation map (SEEK_DATA/SEEK_HOLE)."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after offset
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        if start >= size:
            return
        yield start, end
        offset = end

