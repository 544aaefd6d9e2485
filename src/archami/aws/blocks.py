"""Which 512 KiB blocks of a sparse raw image carry data, and the checksums the EBS direct APIs want.

Data extents come from lseek(SEEK_DATA/SEEK_HOLE), so the holes of a sparse image are never read: a 2 GiB
image with 400 MB of files costs 400 MB of reads, not 2 GiB.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archami.fsutil import data_extents

EBS_BLOCK_SIZE = 512 * 1024  # PutSnapshotBlock takes exactly this many bytes per block
GIB = 1024**3
ZERO_BLOCK = bytes(EBS_BLOCK_SIZE)


def volume_size_gib(image_size: int) -> int:
    """Smallest whole number of GiB that holds the image (EBS volumes are sized in GiB)."""
    return max(1, -(-image_size // GIB))


def data_block_indices(path: Path) -> list[int]:
    """Indices of the EBS blocks that overlap an allocated extent of the file."""
    size = path.stat().st_size
    indices: set[int] = set()
    with path.open("rb") as f:
        for start, end in data_extents(f.fileno(), size):
            indices.update(range(start // EBS_BLOCK_SIZE, (end - 1) // EBS_BLOCK_SIZE + 1))
    return sorted(indices)


@dataclass(frozen=True)
class Block:
    index: int
    data: bytes

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.data).digest()

    @property
    def checksum(self) -> str:
        """PutSnapshotBlock's Checksum: base64 of the block's SHA-256."""
        return base64.b64encode(self.digest).decode()


def blocks_to_upload(path: Path, *, encrypted: bool, volume_bytes: int | None = None) -> Iterator[Block]:
    """The blocks a snapshot of this image needs, in index order.

    Unencrypted snapshots read unwritten blocks as zeroes, so all-zero blocks (holes, or allocated zeroes)
    are skipped. Encrypted snapshots do not: every block of the volume is sent, holes as zero blocks
    without reading them.
    """
    size = path.stat().st_size
    data_blocks = data_block_indices(path)
    with path.open("rb") as f:
        if not encrypted:
            for index in data_blocks:
                data = _read_block(f.fileno(), index, size)
                if data != ZERO_BLOCK:
                    yield Block(index, data)
            return
        total = -(-(volume_bytes or size) // EBS_BLOCK_SIZE)
        wanted = set(data_blocks)
        for index in range(total):
            yield Block(index, _read_block(f.fileno(), index, size) if index in wanted else ZERO_BLOCK)


def _read_block(fd: int, index: int, size: int) -> bytes:
    data = os.pread(fd, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE)
    if len(data) < EBS_BLOCK_SIZE:  # the image's last block, or past its end: the volume reads zeroes
        data += bytes(EBS_BLOCK_SIZE - len(data))
    return data


def linear_checksum(digests_in_index_order: list[bytes]) -> str:
    """CompleteSnapshot's LINEAR aggregate: SHA-256 over the concatenated per-block digests, base64."""
    return base64.b64encode(hashlib.sha256(b"".join(digests_in_index_order)).digest()).decode()
