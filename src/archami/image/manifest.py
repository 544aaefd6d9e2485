"""The manifest of a built image (artifacts.Manifest): what was built, from what, and how big it is."""

from __future__ import annotations

import hashlib
import mmap
import os
from datetime import UTC, datetime
from pathlib import Path

from archami import __version__
from archami.artifacts import Manifest, PackageInfo, PartitionInfo
from archami.bzimage import KernelFacts
from archami.config.load import LoadedDefinition
from archami.config.spec import ImageSpec
from archami.fsutil import allocated_bytes
from archami.image.layout import DiskLayout
from archami.image.pvgrub import pv_grub_boot

_CHUNK = 8 * 1024 * 1024
_ZEROS = bytes(_CHUNK)


def sparse_sha256(path: Path) -> str:
    """sha256 of a sparse file, reading only its data extents (SEEK_DATA/SEEK_HOLE) and feeding holes as
    zeros from memory: a 2 GiB image with 400 MB of data is read at data speed, not disk speed."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    if size == 0:
        return digest.hexdigest()
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        fd = f.fileno()
        offset = 0
        while offset < size:
            try:
                data = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole remains
                data = size
            _feed_zeros(digest, data - offset)
            if data >= size:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            for start in range(data, hole, _CHUNK):
                digest.update(view[start : min(start + _CHUNK, hole)])
            offset = hole
    return digest.hexdigest()


def _feed_zeros(digest: hashlib._Hash, count: int) -> None:
    while count > 0:
        n = min(count, _CHUNK)
        digest.update(_ZEROS[:n] if n < _CHUNK else _ZEROS)
        count -= n


def packages_digest(packages: list[PackageInfo]) -> str:
    lines = sorted(f"{p.name} {p.version}" for p in packages)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def make_manifest(
    *,
    loaded: LoadedDefinition,
    spec: ImageSpec,
    layout: DiskLayout,
    cmdline: str,
    kernel_version: str,
    packages: list[PackageInfo],
    image: Path,
    image_sha256: str,
    build_seconds: float,
    root_cache_key: str,
    root_cache_hit: bool,
    kernel_facts: KernelFacts | None = None,
    source_date_epoch: int | None = None,
) -> Manifest:
    st = image.stat()
    variant = spec.variant
    return Manifest(
        archami_version=__version__,
        definition_name=variant.name,
        definition_path=str(loaded.path),
        definition_sha256=loaded.sha256,
        variant=variant,
        variant_id=variant.id,
        description=spec.description,
        built_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        build_seconds=round(build_seconds, 2),
        kernel_version=kernel_version,
        boot_mode=variant.boot_mode,
        root_device_name=(
            "/dev/xvda" if variant.virtualization == "hvm" else pv_grub_boot(layout.scheme).root_device_name
        ),
        image_size=st.st_size,
        used_bytes=allocated_bytes(image),
        image_sha256=image_sha256,
        packages=packages,
        packages_sha256=packages_digest(packages),
        partition_scheme=layout.scheme,
        partitions=[
            PartitionInfo(role=p.role, number=p.number, start=p.start, size=p.size, type_guid=p.type_guid,
                          part_uuid=p.part_uuid, fs_uuid=p.fs_uuid, fs_label=p.fs_label)
            for p in layout.partitions
        ],
        root_fs_uuid=layout.root.fs_uuid,
        kernel_cmdline=cmdline,
        kernel=kernel_facts,
        root_cache_key=root_cache_key,
        root_cache_hit=root_cache_hit,
        source_date_epoch=source_date_epoch,
    )
