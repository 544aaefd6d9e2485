"""Compressed tar streams as pacman reads them: zstd, gzip, xz, bzip2 or none, chosen by suffix on write
and by magic bytes on read (pacman and libarchive ignore the file name when reading, so do we)."""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from archami.errors import ArchamiError

# Suffix after ".tar" -> compression name.
SUFFIXES = {".zst": "zstd", ".gz": "gzip", ".xz": "xz", ".bz2": "bzip2", "": "none"}
_MAGIC = [
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
]
ZSTD_LEVEL = 19  # makepkg uses -19/-20; one thread keeps the output identical on every machine


def compression_for(path: Path) -> str:
    """The compression a `*.tar[.ext]` file name asks for."""
    name = path.name
    tar_at = name.rfind(".tar")
    if tar_at < 0:
        raise ArchamiError(f"{path}: not a .tar[.zst|.gz|.xz|.bz2] file name")
    suffix = name[tar_at + 4 :]
    if suffix not in SUFFIXES:
        raise ArchamiError(f"{path}: unknown compression {suffix!r} (use one of {', '.join(SUFFIXES)})")
    return SUFFIXES[suffix]


def sniff(head: bytes) -> str:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


@contextmanager
def open_compressed_read(path: Path) -> Iterator[BinaryIO]:
    """A readable stream of the decompressed bytes of `path`, whatever its compression."""
    with path.open("rb") as raw:
        kind = sniff(raw.read(6))
        raw.seek(0)
        if kind == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader:
                yield cast(BinaryIO, reader)
        elif kind == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield cast(BinaryIO, gz)
        elif kind == "xz":
            with lzma.LZMAFile(raw, "rb") as xz:
                yield cast(BinaryIO, xz)
        elif kind == "bzip2":
            with bz2.BZ2File(raw, "rb") as bz:
                yield cast(BinaryIO, bz)
        else:
            yield raw


@contextmanager
def open_compressed_write(out: IO[bytes], kind: str) -> Iterator[BinaryIO]:
    """A writable stream that compresses into `out` (left open). Output depends only on the input:
    no timestamps or file names in headers, one zstd thread."""
    if kind == "zstd":
        writer = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0).stream_writer(out, closefd=False)
        with writer:
            yield cast(BinaryIO, writer)
    elif kind == "gzip":
        with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
            yield cast(BinaryIO, gz)
    elif kind == "xz":
        with lzma.LZMAFile(out, "wb", preset=6) as xz:
            yield cast(BinaryIO, xz)
    elif kind == "bzip2":
        with bz2.BZ2File(out, "wb") as bz:
            yield cast(BinaryIO, bz)
    elif kind == "none":
        yield cast(BinaryIO, out)
    else:
        raise ArchamiError(f"unknown compression {kind!r}")
