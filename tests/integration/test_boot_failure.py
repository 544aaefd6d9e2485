"""A disk that never boots: the boot test fails in bounded time, keeps the serial log, leaves no QEMU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archami.vm.boot import boot_test

pytestmark = pytest.mark.integration


def _qemu_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"qemu-system-x86_64\0-name\0archami-boot-"):
                pids.add(int(entry.name))
    return pids


def test_unbootable_disk_fails_with_serial_log_and_no_vm_left(tmp_path: Path) -> None:
    image = tmp_path / "blank.raw"
    with image.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    before = _qemu_pids()
    report = boot_test(image, "bios", timeout=15, report_dir=tmp_path)
    assert not report.ok and report.boot_to_ssh_seconds is None
    assert "SSH" in report.checks[-1].name and not report.checks[-1].ok
    assert report.serial_log is not None and Path(report.serial_log).exists()
    assert (tmp_path / "boot-test-bios.json").exists()
    assert _qemu_pids() <= before
    assert os.path.getsize(image) == 64 * 1024 * 1024
    with image.open("rb") as handle:
        assert handle.read(1 << 20) == b"\0" * (1 << 20)  # the guest wrote to its overlay, not the image
