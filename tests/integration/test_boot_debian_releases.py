"""Debian testing (forky: Python 3.14, systemd 26x, Linux 7.x) boots under BIOS and UEFI with every health
check green, and the stable image with cloud-init instead of archami's agent boots and takes the IMDS key.
The stable image's own boots are in test_boot_debian.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from build_support import CACHE_DIR, DEBIAN_EXAMPLE
from test_boot_debian import BOOT_TIMEOUT, _failed, _health

from archami.artifacts import BuildResult
from archami.config import load_definition, select
from archami.distro.debian import STALE_ARCHIVE_ENV
from archami.image.pipeline import build_variant
from archami.vm.boot import boot_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TESTING = "forky-ebs-hvm-x86_64"


@pytest.fixture(scope="module")
def testing_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildResult]:
    # This machine's package registry serves a copy of testing past its Release file's Valid-Until: the
    # freshness check (not the signature check) is turned off for this one bootstrap, as the backend allows.
    previous = os.environ.get(STALE_ARCHIVE_ENV)
    os.environ[STALE_ARCHIVE_ENV] = "1"
    try:
        loaded = load_definition(DEBIAN_EXAMPLE)
        yield build_variant(loaded, select(loaded.variants, TESTING)[0], tmp_path_factory.mktemp("forky"), CACHE_DIR)
    finally:
        if previous is None:
            os.environ.pop(STALE_ARCHIVE_ENV, None)
        else:
            os.environ[STALE_ARCHIVE_ENV] = previous


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_testing_boots_healthy(testing_build: BuildResult, tmp_path: Path, firmware: str) -> None:
    report = boot_test(testing_build.image, firmware, report_dir=tmp_path, timeout=BOOT_TIMEOUT)  # type: ignore[arg-type]
    print(f"forky {firmware} boot to SSH: {report.boot_to_ssh_seconds}s, kernel {report.kernel}")
    assert report.ok, _failed(report)
    _health(report)
    assert report.kernel is not None and report.kernel.startswith("7.")
    # The first-boot agent (checked above) ran on the image's own Python, 3.14 in testing.
    python = {p.name: p.version for p in testing_build.manifest.packages}["python3"]
    assert python.startswith("3.14"), python


def test_stable_with_cloud_init_boots_and_accepts_the_metadata_key(tmp_path: Path) -> None:
    matrix = 'virtualization = ["hvm"]\n'
    text = DEBIAN_EXAMPLE.read_text().replace(matrix, matrix + 'flavour = ["cloudinit"]\n')
    definition = tmp_path / "debian-cloud-init.toml"
    definition.write_text(text)
    loaded = load_definition(definition)
    (spec,) = select(loaded.specs, "trixie-ebs-hvm-cloudinit-x86_64")
    assert spec.firstboot.agent == "cloud-init"
    built = build_variant(loaded, spec, tmp_path / "out", CACHE_DIR)
    report = boot_test(built.image, "bios", disk_size=4 * 1024**3, report_dir=tmp_path, timeout=BOOT_TIMEOUT)
    print(f"cloud-init boot to SSH: {report.boot_to_ssh_seconds}s")
    assert report.ok, _failed(report)
    names = {c.name: c for c in report.checks}
    assert names["SSH login with the metadata key"].ok and names["root filesystem fills the volume"].ok
