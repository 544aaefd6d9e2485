"""The manifest's image digest reads only data extents of a sparse file, and equals a plain sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from archami.artifacts import PackageInfo
from archami.image.manifest import packages_digest, sparse_sha256


def _plain(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.mark.parametrize(
    "extents",
    [
        [],  # all hole
        [(0, b"start")],
        [(4096 * 3, os.urandom(10_000)), (20 * 1024 * 1024, b"middle"), (64 * 1024 * 1024 - 3, b"end")],
    ],
)
def test_sparse_digest_equals_the_plain_digest(tmp_path: Path, extents: list[tuple[int, bytes]]) -> None:
    image = tmp_path / "image.raw"
    with image.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
        for offset, data in extents:
            f.seek(offset)
            f.write(data)
    assert sparse_sha256(image) == _plain(image)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    assert sparse_sha256(tmp_path / "e") == hashlib.sha256(b"").hexdigest()


def test_packages_digest_ignores_order_and_sees_versions() -> None:
    a = [PackageInfo(name="a", version="1"), PackageInfo(name="b", version="2")]
    assert packages_digest(a) == packages_digest(list(reversed(a)))
    newer = [PackageInfo(name="a", version="1"), PackageInfo(name="b", version="3")]
    assert packages_digest(a) != packages_digest(newer)
