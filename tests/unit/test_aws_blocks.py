"""Which blocks of a sparse image are uploaded, and the checksums sent with them."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archami.aws.images import volume_size_gib
from archami.aws.upload import (
    EBS_BLOCK_SIZE,
    ZERO_BLOCK,
    blocks_to_upload,
    data_block_indices,
    linear_checksum,
)

B = EBS_BLOCK_SIZE


def sparse(path: Path, size: int, writes: dict[int, bytes]) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
        for offset, data in writes.items():
            f.seek(offset)
            f.write(data)
    return path


def test_holes_are_never_candidates(tmp_path: Path) -> None:
    image = sparse(tmp_path / "i", 64 * B, {0: b"a", 10 * B + B - 1: b"bc", 40 * B: b"z" * (2 * B)})
    # the write at the end of block 10 spills one byte into block 11
    assert data_block_indices(image) == [0, 10, 11, 40, 41]


def test_unencrypted_skips_allocated_zero_blocks(tmp_path: Path) -> None:
    image = sparse(tmp_path / "i", 16 * B, {0: b"x" * 10, 2 * B: bytes(B), 5 * B: b"y"})
    blocks = list(blocks_to_upload(image, encrypted=False))
    assert [b.index for b in blocks] == [0, 5]
    assert blocks[0].data == b"x" * 10 + bytes(B - 10)
    assert blocks[0].checksum == base64.b64encode(hashlib.sha256(blocks[0].data).digest()).decode()


def test_encrypted_sends_every_block_of_the_volume(tmp_path: Path) -> None:
    image = sparse(tmp_path / "i", 3 * B + 100, {B: b"q"})
    blocks = list(blocks_to_upload(image, encrypted=True, volume_bytes=8 * B))
    assert [b.index for b in blocks] == list(range(8))
    assert blocks[0].data == ZERO_BLOCK and blocks[1].data.startswith(b"q")
    assert all(len(b.data) == B for b in blocks)


def test_last_partial_block_is_padded(tmp_path: Path) -> None:
    image = sparse(tmp_path / "i", 2 * B + 7, {2 * B: b"1234567"})
    (block,) = list(blocks_to_upload(image, encrypted=False))
    assert block.index == 2 and block.data == b"1234567" + bytes(B - 7)


def test_linear_checksum_is_sha256_of_concatenated_digests() -> None:
    digests = [hashlib.sha256(bytes([i]) * B).digest() for i in range(3)]
    expected = base64.b64encode(hashlib.sha256(digests[0] + digests[1] + digests[2]).digest()).decode()
    assert linear_checksum(digests) == expected
    assert linear_checksum(digests[::-1]) != expected  # order matters


def test_volume_size_rounds_up_to_gib() -> None:
    assert volume_size_gib(1) == 1
    assert volume_size_gib(1024**3) == 1
    assert volume_size_gib(1024**3 + 1) == 2


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.integers(0, 63 * B), st.binary(min_size=1, max_size=3000), max_size=6))
def test_uploaded_blocks_rebuild_the_image(tmp_path_factory: pytest.TempPathFactory, writes: dict[int, bytes]) -> None:
    """Writing the uploaded blocks into zeroes gives back the image: nothing with data is skipped."""
    image = sparse(tmp_path_factory.mktemp("blocks") / "image", 64 * B, writes)
    try:
        rebuilt = bytearray(64 * B)
        for block in blocks_to_upload(image, encrypted=False):
            assert block.data != ZERO_BLOCK
            rebuilt[block.index * B : (block.index + 1) * B] = block.data
        assert bytes(rebuilt) == image.read_bytes()
    finally:
        image.unlink()
