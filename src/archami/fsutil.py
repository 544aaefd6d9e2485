"""Small filesystem helpers shared by stages that prepare an image root."""

from __future__ import annotations

import shutil
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
