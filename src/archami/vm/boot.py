"""`boot_test`: boot an image like EC2 would launch it, log in with the key the metadata service served,
check what an AMI user relies on, and write a TestReport beside the image."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from archami.artifacts import (
    MANIFEST_NAME,
    CheckResult,
    Manifest,
    TestReport,
    boot_report_name,
    read_json,
    write_json_atomic,
)
from archami.errors import ArchamiError
from archami.firstboot.install import EARLY_UNIT
from archami.vm import checks, health, health_mounts, ssh
from archami.vm.guest import BootFailed, Guest, running_guest
from archami.vm.imds import ImdsConfig
from archami.vm.qemu import MACHINES, GuestArchitecture, disk_virtual_size, make_overlay

AGENT_UNIT = EARLY_UNIT  # the phase that fetches keys and hostname before sshd starts
OVERLAY_NAME = "disk.qcow2"
KEY_NAME = "id_ed25519"


def random_instance(**changes: object) -> ImdsConfig:
    """Metadata for a new instance: fresh instance-id and a hostname derived from its private address."""
    octets = [secrets.randbelow(250) + 2 for _ in range(2)]
    address = f"10.0.{octets[0]}.{octets[1]}"
    base = ImdsConfig(
        instance_id="i-0" + secrets.token_hex(8),
        hostname=f"ip-{address.replace('.', '-')}.ec2.internal",
        local_ipv4=address,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def image_sha256(image: Path) -> str:
    """From the build's manifest when it describes this very file (same size), else hashed here."""
    return image_facts(image).sha256


MAX_CONSOLE_BYTES = 8 << 20  # a console that loops on an error is still scanned, from its end


def console_text(serial_log: Path) -> str:
    try:
        with serial_log.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - MAX_CONSOLE_BYTES))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_checks(
    guest: Guest, imds: ImdsConfig, disk_size: int, agent_unit: str = AGENT_UNIT, architecture: str = "x86_64"
) -> tuple[list[CheckResult], dict[str, str]]:
    """The checks' results and the raw probe outputs (facts such as kernel and machine-id).

    Boot health (kola's checks on every boot) comes after what an AMI user relies on: the boot finished
    with systemd 'running', no failed unit, every fstab entry mounted, and nothing alarming in the serial
    console or the journal."""
    script = checks.probe_script(agent_unit)
    outputs = checks.split_sections(guest.run(script, timeout=checks.BOOT_WAIT_SECONDS + 120).stdout)
    results = [
        CheckResult(name="SSH login with the metadata key", ok=True, detail=f"after {guest.boot_seconds:.1f}s"),
        checks.check_machine(outputs["machine"], architecture),
        checks.check_hostname(outputs["hostname"], imds.hostname),
        checks.check_key_only_ssh(outputs["sshd"], guest.password_refusal()),
        checks.check_root_read_write(outputs["root_options"]),
        checks.check_unit_succeeded(outputs["agent"], agent_unit),
        checks.check_root_fills_disk(outputs["root_geometry"], disk_size),
        health.check_system_running(outputs["system_state"]),
        checks.check_no_failed_units(outputs["failed_units"]),
        health_mounts.check_fstab_mounted(outputs["fstab"], outputs["mounts"]),
        health_mounts.check_fstab_verifies(outputs["fstab_verify"]),
        *health.scan({"console": console_text(guest.serial_log), "journal": outputs["journal"]}),
    ]
    return results, outputs


@dataclass(frozen=True)
class ImageFacts:
    """What the boot test needs to know about an image: from its build manifest, when it has one beside it."""

    sha256: str
    architecture: GuestArchitecture
    boot_mode: str  # EC2 BootMode: uefi-preferred, uefi, legacy-bios


def image_facts(image: Path) -> ImageFacts:
    """The manifest's facts when it describes this very file (same size); else a hashed x86_64 image."""
    manifest_path = image.with_name(MANIFEST_NAME)
    manifest = None
    if manifest_path.exists():
        try:
            manifest = read_json(manifest_path, Manifest)
        except (ValueError, OSError):
            manifest = None
    if manifest is not None and manifest.image_size == image.stat().st_size:
        architecture = manifest.variant.architecture
        if architecture not in MACHINES:
            machines = ", ".join(MACHINES)
            raise ArchamiError(f"{image}: no boot test for {architecture} images (QEMU machines: {machines})")
        return ImageFacts(manifest.image_sha256, architecture, manifest.boot_mode)  # type: ignore[arg-type]
    with image.open("rb") as handle:
        return ImageFacts(hashlib.file_digest(handle, "sha256").hexdigest(), "x86_64", "uefi-preferred")


def default_firmware(boot_mode: str) -> Literal["bios", "uefi"]:
    """BIOS for hybrid (uefi-preferred) and BIOS-only images, UEFI for images that boot only so (arm64)."""
    return "uefi" if boot_mode == "uefi" else "bios"


# Seconds to wait for SSH. TCG emulating an arm64 guest on x86_64 took 38 s to SSH here at load 3 (x86_64: 27 s;
# bench/arm64.py) and 58-75 s at load 10; both take far more on a loaded host (x86_64: 215 s seen at load 11).
DEFAULT_TIMEOUTS = {"x86_64": 300.0, "aarch64": 600.0}


def boot_test(
    image: Path,
    firmware: Literal["bios", "uefi"] | None = None,
    *,
    imds: ImdsConfig | None = None,
    disk_size: int | None = None,
    keep: bool = False,
    timeout: float | None = None,
    work_dir: Path | None = None,
    report_dir: Path | None = None,
    progress: Callable[[str], None] = lambda stage: None,
) -> TestReport:
    """Boot `image` (never modified: the guest writes to a qcow2 overlay), log in, check, power off.

    A throwaway ed25519 key is added to the metadata's public keys (`imds`, default: a random instance).
    `disk_size` makes the volume larger than the image (grow-root). With `keep`, `work_dir` keeps the
    overlay, the key and the logs; a `work_dir` that already holds an overlay boots that same disk again,
    which is what launching an AMI made from a running instance does. The report is written as
    boot-test-<firmware>.json in `report_dir` (default: beside the image) and returned; ok=False on failed
    checks. A guest that never accepts the key gives ok=False with the serial log kept.
    The guest's architecture comes from the image's manifest (x86_64 without one); `firmware` defaults to BIOS,
    or UEFI for an image that boots only so, and `timeout` to the architecture's DEFAULT_TIMEOUTS.
    `progress` hears each stage as it happens (firmware, what the console shows, login, checks, power-off).
    """
    if not image.is_file():
        raise ArchamiError(f"{image}: no such image")
    facts = image_facts(image)
    firmware = firmware or default_firmware(facts.boot_mode)
    if firmware not in MACHINES[facts.architecture].firmwares:
        raise ArchamiError(f"{image}: {facts.architecture} images boot with UEFI only (use --firmware uefi)")
    timeout = timeout if timeout is not None else DEFAULT_TIMEOUTS[facts.architecture]
    made_work_dir = work_dir is None
    work = work_dir or Path(tempfile.mkdtemp(prefix=f"archami-boot-{firmware}-"))
    work.mkdir(parents=True, exist_ok=True)
    overlay = work / OVERLAY_NAME
    if not overlay.exists():
        make_overlay(image, overlay, disk_size)
    volume = disk_virtual_size(overlay)
    key = ssh.generate_keypair(work, KEY_NAME)
    instance = imds or random_instance()
    instance = replace(instance, public_keys={**instance.public_keys, "archami-boot-test": key.public_line})
    report = TestReport(
        image_sha256=facts.sha256, firmware=firmware, ok=False, boot_to_ssh_seconds=None,
        disk_size=volume, instance_id=instance.instance_id, work_dir=str(work) if keep else None,
    )
    try:
        # A kept disk may be booted again, so it is shut down cleanly; a throwaway overlay is not worth it.
        progress(f"firmware ({firmware}) starting")
        with running_guest(overlay, firmware, instance, key, work, timeout=timeout, clean_shutdown=keep,
                           architecture=facts.architecture, progress=progress) as guest:
            report.accel = guest.accel
            report.boot_to_ssh_seconds = round(guest.boot_seconds, 1)
            progress("checks: what an AMI user relies on, then boot health")
            report.checks, probed = run_checks(guest, instance, volume, architecture=facts.architecture)
            report.kernel = probed["kernel"].strip()
            report.architecture = probed["machine"].strip()
            report.machine_id = probed["machine_id"].strip()
            report.host_key = guest.host_key()
            report.ok = all(check.ok for check in report.checks)
            progress(f"{sum(c.ok for c in report.checks)} of {len(report.checks)} checks passed; powering off")
    except BootFailed as exc:
        # What the console says is often why: a panic, an emergency shell, a device that timed out.
        findings = [c for c in health.scan({"console": console_text(exc.serial_log)}) if not c.ok]
        report.checks += [*findings, CheckResult(name="SSH login with the metadata key", ok=False, detail=str(exc))]
    destination = report_dir or image.parent
    if not report.ok:
        kept = destination / f"boot-test-{firmware}-serial.log"
        serial = work / f"serial-{firmware}.log"
        if serial.exists():
            shutil.copyfile(serial, kept)
            report.serial_log = str(kept)
    write_json_atomic(destination / boot_report_name(firmware), report)
    if not keep:
        # Only what this run made goes: a caller's work_dir itself stays.
        if made_work_dir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for name in (OVERLAY_NAME, KEY_NAME, KEY_NAME + ".pub", "OVMF_VARS.fd", f"serial-{firmware}.log"):
                (work / name).unlink(missing_ok=True)
    return report

