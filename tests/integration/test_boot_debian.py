"""End to end: the Debian example image boots under BIOS and UEFI like an EC2 instance, takes its key from
the local IMDS, grows its root to a larger volume, and a second boot of the same disk as another instance
(an AMI made from a running instance) replaces the key, host key and machine-id.

Three boots of ~30-70 s each under TCG.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from archami import artifacts
from archami.artifacts import BuildResult, boot_report_name, read_json
from archami.vm import health, ssh
from archami.vm.boot import KEY_NAME, OVERLAY_NAME, boot_test, random_instance
from archami.vm.guest import running_guest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GIB = 1024**3
FirstBoot = tuple[artifacts.TestReport, Path]
# A boot takes 30-70 s on an idle 2-core machine; allow for a busy one (seen: 215 s at load 11).
BOOT_TIMEOUT = 600


# Boot health, kola-style: every one is reported, by name, on every boot.
HEALTH_CHECKS = {"boot finished, system running", "no failed systemd units", "every fstab entry mounted",
                 "fstab verifies (findmnt --verify)", *(c.name for c in health.TEXT_CHECKS)}


def _failed(report: artifacts.TestReport) -> str:
    lines = [f"{c.name}: {'ok' if c.ok else 'FAIL'} {c.detail}" for c in report.checks]
    return "\n".join(lines) + f"\nserial log: {report.serial_log}"


def _health(report: artifacts.TestReport) -> None:
    names = {c.name: c for c in report.checks}
    assert set(names) >= HEALTH_CHECKS, HEALTH_CHECKS - set(names)
    for name in sorted(HEALTH_CHECKS):
        print(f"  {report.firmware} {name}: {'ok' if names[name].ok else 'FAIL'} ({names[name].detail})")
    assert "/boot/efi vfat" in names["every fstab entry mounted"].detail  # the ESP itself, not a directory


@pytest.fixture(scope="module")
def first_boot(debian_build: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> FirstBoot:
    """BIOS boot on a 4 GiB volume (the image is 2 GiB), disk kept for the second boot."""
    work = tmp_path_factory.mktemp("first-boot")
    report = boot_test(
        debian_build.image, "bios", disk_size=4 * GIB, keep=True, work_dir=work, report_dir=work,
        timeout=BOOT_TIMEOUT,
    )
    print(f"BIOS boot to SSH: {report.boot_to_ssh_seconds}s ({report.accel})")
    return report, work


def test_bios_boot_logs_in_with_the_metadata_key_and_grows_root(first_boot: FirstBoot) -> None:
    report, work = first_boot
    assert report.ok, _failed(report)
    _health(report)
    assert read_json(work / boot_report_name("bios"), artifacts.TestReport) == report
    names = {c.name: c for c in report.checks}
    assert names["root filesystem fills the volume"].ok
    assert report.disk_size == 4 * GIB
    assert report.boot_to_ssh_seconds is not None and report.machine_id and report.host_key


def test_second_instance_from_the_same_disk_gets_new_identity(first_boot: FirstBoot) -> None:
    first, work = first_boot
    assert first.ok, _failed(first)
    old_key = ssh.SshKey(work / KEY_NAME, (work / (KEY_NAME + ".pub")).read_text().strip())
    new_key = ssh.generate_keypair(work / "second", comment="second-instance")
    second = random_instance(public_keys={"second": new_key.public_line})
    assert second.instance_id != first.instance_id
    with running_guest(
        work / OVERLAY_NAME, "bios", second, new_key, work / "second", timeout=BOOT_TIMEOUT
    ) as guest:
        print(f"second boot to SSH: {guest.boot_seconds:.1f}s")
        assert guest.can_login(new_key)
        assert not guest.can_login(old_key), "the first instance's key still logs in"
        authorized = guest.output("cat /root/.ssh/authorized_keys")
        assert new_key.public_line.split()[1] in authorized
        assert old_key.public_line.split()[1] not in authorized
        assert guest.output("cat /etc/machine-id").strip() not in ("", first.machine_id)
        assert guest.host_key() not in (None, first.host_key)
        assert guest.output("hostname").strip() in (second.hostname, second.hostname.split(".")[0])


def test_uefi_boot_logs_in_and_leaves_the_image_untouched(debian_build: BuildResult, tmp_path: Path) -> None:
    report = boot_test(debian_build.image, "uefi", report_dir=tmp_path, timeout=BOOT_TIMEOUT)
    print(f"UEFI boot to SSH: {report.boot_to_ssh_seconds}s ({report.accel})")
    assert report.ok, _failed(report)
    _health(report)
    assert report.serial_log is None
    with debian_build.image.open("rb") as image:
        assert hashlib.file_digest(image, "sha256").hexdigest() == debian_build.manifest.image_sha256
    assert not list(tmp_path.glob("*.qcow2"))


def test_tools_present() -> None:
    """CI installs these through the Makefile; their absence is a failure, never a skip."""
    for tool in ("qemu-system-x86_64", "qemu-img", "nc", "ssh", "ssh-keygen", "ssh-keyscan"):
        assert shutil.which(tool), f"{tool} missing: run make deps"
