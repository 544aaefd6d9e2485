"""End to end: the Debian example's Graviton image, built on this x86_64 machine, boots under
qemu-system-aarch64 (virt machine, EDK2/AAVMF UEFI, NVMe root volume, TCG) against the local IMDS: the
metadata key logs in, the same health checks as x86_64 are green, and `uname -m` says aarch64. One boot:
arm64 under TCG costs about as much as two x86_64 boots (bench/boot_arm64.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_boot_debian import HEALTH_CHECKS, _failed

from archami.artifacts import BuildResult
from archami.vm.boot import DEFAULT_TIMEOUTS, boot_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_arm64_image_boots_under_uefi_with_the_metadata_key(arm64_build: BuildResult, tmp_path: Path) -> None:
    # A volume larger than the image, as users launch: the root (partition 2 here, no BIOS boot partition)
    # grows to its end. Firmware and timeout come from the image's manifest.
    report = boot_test(arm64_build.image, report_dir=tmp_path, disk_size=3 * 1024**3)
    print(f"arm64 UEFI boot to SSH: {report.boot_to_ssh_seconds}s ({report.accel}, "
          f"timeout {DEFAULT_TIMEOUTS['aarch64']:.0f}s)")
    assert report.ok, _failed(report)
    assert report.firmware == "uefi" and report.accel == "tcg"
    assert report.architecture == "aarch64" and report.kernel and report.kernel.endswith("-cloud-arm64")
    checks = {c.name: c for c in report.checks}
    assert set(checks) >= HEALTH_CHECKS | {"SSH login with the metadata key", "CPU architecture"}
    assert all(c.ok for c in checks.values()), _failed(report)
    assert "/boot/efi vfat" in checks["every fstab entry mounted"].detail
    assert "nvme0n1p2" in checks["every fstab entry mounted"].detail  # the root volume is the NVMe disk
    assert report.disk_size == 3 * 1024**3 and checks["root filesystem fills the volume"].ok


def test_arm64_tools_present() -> None:
    """CI installs these through the Makefile; their absence is a failure, never a skip."""
    for tool in ("qemu-system-aarch64", "qemu-aarch64-static"):
        assert shutil.which(tool), f"{tool} missing: run make deps"
    assert Path("/usr/share/AAVMF/AAVMF_CODE.fd").is_file(), "qemu-efi-aarch64 missing: run make deps"
