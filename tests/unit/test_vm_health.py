"""Boot health checks against recorded consoles, journals and mount tables (tests/unit/boot_health/): each
check is tripped by a recording of the trouble it looks for, and a healthy trixie boot passes them all.

console-trixie-*.log, journal-trixie-*.txt and mounts-trixie-*.txt were recorded from archami's trixie image
under QEMU (the ESP timeout with the old 10 s device timeout on a slowed guest; the generator failure before the
image masked systemd-ssh-generator; the healthy pair from the image as it is built now); the others are written in
the exact shape Linux 6.12, systemd 257 and initramfs-tools print.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from archami.artifacts import CheckResult
from archami.vm import checks, health, health_mounts

FIXTURES = Path(__file__).parent / "boot_health"


def read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8", errors="replace")


def failing(**sources: str) -> dict[str, CheckResult]:
    return {c.name: c for c in health.scan(sources) if not c.ok}


HEALTHY = {"console": read("console-trixie-healthy.log"), "journal": read("journal-trixie-healthy.txt")}

# recording -> {check it trips: text its detail must quote}; nothing else may trip.
TRIPS: dict[str, dict[str, str]] = {
    "console-kernel-panic.log": {"no kernel panic": "VFS: Unable to mount root fs on unknown-block(0,0)"},
    "console-kernel-oops.log": {"no kernel oops": "Oops: 0000 [#1]", "no kernel BUG": "NULL pointer dereference"},
    "journal-kernel-warning.txt": {"no kernel WARNING": "drivers/net/virtio_net.c:3123"},
    "journal-segfault.txt": {"no segfaults or core dumps": "python3[365]: segfault at 8"},
    "console-emergency.log": {"no emergency or rescue mode": "does not exist.  Dropping to a shell!"},
    "journal-emergency.txt": {"no emergency or rescue mode": "Emergency Mode",
                              "no failed dependencies": "local-fs.target"},
    "journal-trixie-esp-timeout.txt": {"no timed-out jobs": "Timed out waiting for device",
                                       "no failed dependencies": "boot-efi.mount - /boot/efi"},
    "console-trixie-esp-timeout.log": {"no timed-out jobs": "/dev/disk/by-uuid/A796-39B2",
                                       "no failed dependencies": "boot-efi.mount - /boot/efi",
                                       "no failed generators": "systemd-ssh-generator failed"},
    "journal-service-timeout.txt": {"no timed-out jobs": "start operation timed out"},
    "journal-failed-start.txt": {"no failed starts": "Failed to start ssh.service"},
    "journal-ordering-cycle.txt": {"no ordering cycles": "deleted to break ordering cycle"},
    "journal-trixie-generator-failed.txt": {"no failed generators": "systemd-ssh-generator failed with exit status 1"},
    "console-trixie-generator-failed.log": {"no failed generators": "systemd-ssh-generator failed with exit status 1"},
    "journal-oom.txt": {"no OOM kills": "ssh-keygen invoked oom-killer"},
}


def test_a_healthy_trixie_boot_passes_every_text_check() -> None:
    results = health.scan(HEALTHY)
    assert [c.name for c in results] == [c.name for c in health.TEXT_CHECKS]
    assert [c for c in results if not c.ok] == []


@pytest.mark.parametrize("recording", sorted(TRIPS))
def test_each_recording_trips_exactly_its_checks(recording: str) -> None:
    source = "console" if recording.startswith("console") else "journal"
    found = failing(**{source: read(recording)})
    assert set(found) == set(TRIPS[recording]), {n: c.detail for n, c in found.items()}
    for name, quoted in TRIPS[recording].items():
        assert quoted in found[name].detail
        assert found[name].detail.startswith(f"{source}: ")


def test_every_text_check_has_a_recording_that_trips_it() -> None:
    tripped = {name for names in TRIPS.values() for name in names}
    assert tripped == {c.name for c in health.TEXT_CHECKS}


def test_console_colours_and_timestamps_are_not_quoted() -> None:
    found = failing(console=read("console-trixie-esp-timeout.log"))
    detail = found["no failed dependencies"].detail
    assert "\x1b" not in detail and "\r" not in detail
    assert detail == "console: [DEPEND] Dependency failed for boot-efi.mount - /boot/efi."
    journal = failing(journal=read("journal-trixie-esp-timeout.txt"))["no failed dependencies"].detail
    assert journal == "journal: Dependency failed for boot-efi.mount - /boot/efi."  # no '[ t] host systemd[1]: '


def test_a_finding_in_both_sources_is_quoted_from_each_and_long_lists_are_counted() -> None:
    found = failing(console=read("console-trixie-esp-timeout.log"), journal=read("journal-trixie-esp-timeout.txt"))
    detail = found["no timed-out jobs"].detail
    assert detail.startswith("console: [ TIME ] Timed out waiting for device") and "(+1 more)" in detail
    assert detail.count(" | ") == health.SHOWN - 1


def test_an_unbootable_disk_passes_a_console_with_nothing_on_it() -> None:
    assert all(c.ok for c in health.scan({"console": ""}))


@pytest.mark.parametrize(("output", "ok", "detail"), [
    ("running\n", True, "running"),
    ("degraded\n", False, "degraded (a unit failed)"),
    ("starting\n", False, "starting (the boot did not finish in time)"),
    ("", False, "no answer"),
])
def test_system_running_after_the_wait(output: str, ok: bool, detail: str) -> None:
    result = health.check_system_running(output)
    assert (result.ok, result.detail) == (ok, detail)


FSTAB = read("fstab-trixie.txt")


def test_root_and_the_automounted_esp_really_mounted() -> None:
    result = health_mounts.check_fstab_mounted(FSTAB, read("mounts-trixie-esp-automounted.txt"))
    assert result.ok, result.detail
    assert result.detail == "/ ext4 from /dev/nvme0n1p3; /boot/efi vfat from /dev/nvme0n1p2"


def test_an_automount_point_that_never_mounted_fails() -> None:
    result = health_mounts.check_fstab_mounted(FSTAB, read("mounts-trixie-esp-autofs-only.txt"))
    assert not result.ok and result.detail.startswith("/boot/efi: only its automount point")


def test_an_esp_missing_after_a_device_timeout_fails() -> None:
    result = health_mounts.check_fstab_mounted(FSTAB, read("mounts-trixie-esp-missing.txt"))
    assert not result.ok and result.detail == "/boot/efi (vfat, UUID=A796-39B2): not mounted"


def test_the_wrong_filesystem_at_a_mount_point_fails() -> None:
    mounts = read("mounts-trixie-esp-automounted.txt").replace("/dev/nvme0n1p2 /boot/efi vfat", "tmpfs /boot/efi tmpfs")
    result = health_mounts.check_fstab_mounted(FSTAB, mounts)
    assert not result.ok and result.detail == "/boot/efi: tmpfs mounted, fstab says vfat"


def test_swap_noauto_and_escaped_paths() -> None:
    fstab = FSTAB + (
        "/swapfile none swap sw 0 0\n"
        "UUID=1234-ABCD /media/usb vfat noauto 0 0\n"
        "LABEL=data /srv/my\\040data ext4 noauto,x-systemd.automount 0 2\n"
    )
    mounts = read("mounts-trixie-esp-automounted.txt")
    missing = health_mounts.check_fstab_mounted(fstab, mounts)
    assert not missing.ok and missing.detail == "/srv/my data (ext4, LABEL=data): not mounted"
    mounts += "/dev/nvme1n1 /srv/my\\040data ext4 rw,relatime 0 0\n"
    assert health_mounts.check_fstab_mounted(fstab, mounts).ok


def test_an_unreadable_fstab_fails() -> None:
    assert not health_mounts.check_fstab_mounted("cat: /etc/fstab: No such file or directory\n", "").ok


def test_findmnt_verify() -> None:
    assert health_mounts.check_fstab_verifies(read("findmnt-verify-healthy.txt")).ok
    result = health_mounts.check_fstab_verifies(read("findmnt-verify-unreachable.txt"))
    assert not result.ok
    assert result.detail.startswith("[E] unreachable on boot required source: UUID=41e448f8")
    assert result.detail.endswith("(rc=1)")
    assert not health_mounts.check_fstab_verifies("sh: 1: findmnt: not found\nrc=127\n").ok


def test_the_probe_script_is_valid_shell_and_keeps_awk_braces() -> None:
    script = checks.probe_script("archami-firstboot.service")
    assert "{print $2}" in script and "is-system-running --wait" in script.split("\n")[0]
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0


def test_a_health_finding_fails_the_boot_result_a_release_reads() -> None:
    from archami.artifacts import TestReport
    from archami.release.records import BootTestResult

    healthy = [CheckResult(name="SSH login with the metadata key", ok=True), *health.scan(HEALTHY)]
    scanned = health.scan({"console": read("console-trixie-esp-timeout.log")})
    found = [CheckResult(name="SSH login with the metadata key", ok=True), *scanned]
    reports = [TestReport(image_sha256="0" * 64, firmware=fw, ok=all(c.ok for c in checks_),
                          boot_to_ssh_seconds=30.0, checks=checks_)
               for fw, checks_ in (("bios", healthy), ("uefi", found))]
    result = BootTestResult.from_reports(reports)
    assert result.status == "failed"
    # That console is from before systemd-ssh-generator was masked: its failure is a finding too.
    assert result.reason == "uefi: no timed-out jobs; uefi: no failed dependencies; uefi: no failed generators"
