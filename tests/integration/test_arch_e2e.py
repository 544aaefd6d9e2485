"""End to end Arch: build examples/arch.toml (ebs-hvm-x86_64) with the project's own signed `ec2` repository
enabled first, then boot it under BIOS and UEFI and log in with the key the local IMDS serves.

Needs a reachable Arch mirror, which this project's CI does not have: the test runs only when
ARCHAMI_ARCH_MIRROR is set (e.g. https://mirror.example/archlinux/$repo/os/$arch) and says so otherwise.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Literal

import pytest

from archami import artifacts
from archami.artifacts import BuildResult
from archami.config import load_definition, select
from archami.distro.arch_conf import MIRROR_ENV
from archami.image.pipeline import build_variant
from archami.pacman.project import build_repository
from archami.vm.boot import boot_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARCH_EXAMPLE = REPO / "examples" / "arch.toml"
VARIANT = "ebs-hvm-x86_64"
CACHE_DIR = Path(os.environ.get("ARCHAMI_TEST_CACHE", "/var/cache/archami"))
BOOT_TIMEOUT = 600
EXAMPLE_SERVER = 'server = "file:///var/lib/archami/repo/$repo/$arch"'
EXAMPLE_KEY = 'key = "packages/ec2-keyring/ec2.gpg"'


@pytest.fixture(scope="module")
def arch_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        pytest.skip(f"no Arch mirror configured: set {MIRROR_ENV}")
    work = tmp_path_factory.mktemp("arch-e2e")
    # The project's packages, built into a signed repository; a copy, so the repository key this run
    # creates lands in the copy and not in the working tree.
    packages = work / "packages"
    shutil.copytree(REPO / "packages", packages)
    # A throwaway signing key for this run: without the project's secret key a committed public key
    # could not be used, so drop it and let `repo build` make (and write) a fresh one.
    (packages / "ec2-keyring" / "ec2.gpg").unlink(missing_ok=True)
    gnupghome = work / "gnupg"
    gnupghome.mkdir(mode=0o700)
    build_repository(packages, work / "repo" / "ec2" / "x86_64", gnupghome=gnupghome, mirrors=[mirror])
    key_file = packages / "ec2-keyring" / "ec2.gpg"
    assert key_file.is_file(), "archami repo build wrote no public key"

    text = ARCH_EXAMPLE.read_text()
    assert EXAMPLE_SERVER in text and EXAMPLE_KEY in text, "examples/arch.toml's ec2 repository changed"
    text = text.replace(EXAMPLE_SERVER, f'server = "file://{work}/repo/$repo/$arch"')
    text = text.replace(EXAMPLE_KEY, f'key = "{key_file}"')
    definition = work / "arch.toml"
    definition.write_text(text)
    loaded = load_definition(definition)
    variant = select(loaded.variants, VARIANT)[0]
    return build_variant(loaded, variant, work / "out", CACHE_DIR)


def _failed(report: artifacts.TestReport) -> str:
    lines = [f"{c.name}: {'ok' if c.ok else 'FAIL'} {c.detail}" for c in report.checks]
    return "\n".join(lines) + f"\nserial log: {report.serial_log}"


def test_arch_image_has_the_ec2_repository_and_packages(arch_build: BuildResult) -> None:
    names = {p.name for p in arch_build.manifest.packages}
    assert {"linux", "openssh", "ec2-keyring", "ec2-pacman-mirrors", "archami-firstboot"} <= names
    assert not {"initscripts", "sysvinit"} & names
    assert arch_build.manifest.boot_mode == "uefi-preferred"


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_arch_image_boots_and_accepts_the_imds_key(
    arch_build: BuildResult, firmware: Literal["bios", "uefi"], tmp_path: Path
) -> None:
    report = boot_test(arch_build.image, firmware, report_dir=tmp_path, timeout=BOOT_TIMEOUT)
    print(f"Arch {firmware} boot to SSH: {report.boot_to_ssh_seconds}s")
    assert report.ok, _failed(report)
