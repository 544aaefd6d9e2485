from pathlib import Path

import pytest

from archami.artifacts import CheckResult, Manifest, PackageInfo, PublishRecord, RegionImage
from archami.artifacts import TestReport as BootReport
from archami.config import load_definition
from archami.errors import ArchamiError
from archami.release.records import BootTestResult, VariantRelease, load_record, load_records

ROOT = Path(__file__).resolve().parents[2]


def _report(firmware: str, ok: bool, failed_check: str | None = None) -> BootReport:
    checks = [CheckResult(name="SSH login with the metadata key", ok=True)]
    if failed_check:
        checks.append(CheckResult(name=failed_check, ok=False, detail="x"))
    return BootReport(image_sha256="0" * 64, firmware=firmware, ok=ok,
                      boot_to_ssh_seconds=31.0, checks=checks)


def test_boot_result_from_reports() -> None:
    passed = BootTestResult.from_reports([_report("bios", True), _report("uefi", True)])
    assert passed.status == "passed" and [r.firmware for r in passed.runs] == ["bios", "uefi"]
    failed = BootTestResult.from_reports([_report("bios", True), _report("uefi", False, "no failed systemd units")])
    assert failed.status == "failed" and failed.reason == "uefi: no failed systemd units"
    assert BootTestResult.from_reports([]).status == "failed"


def test_variant_release_from_the_stage_artifacts() -> None:
    spec = load_definition(ROOT / "examples" / "debian.toml").specs[0]
    variant = spec.variant
    manifest = Manifest(
        archami_version="0.1.0", definition_name="debian", definition_path="examples/debian.toml",
        definition_sha256="a" * 64, variant=variant, variant_id=variant.id, built_at="2026-11-25T03:00:00Z",
        build_seconds=60.0, kernel_version="6.1.0-28-cloud-amd64", boot_mode=variant.boot_mode,
        image_size=2 * 1024**3, used_bytes=400 * 1024**2, image_sha256="b" * 64,
        packages=[PackageInfo(name="sudo", version="1.9.13p3-1+deb12u1"),
                  PackageInfo(name="linux-image-cloud-amd64", version="6.1.119-1")],
        packages_sha256="c" * 64,
    )
    published = PublishRecord(
        variant_id=variant.id, ami_name=f"debian-{variant.id}-2026.11.25", image_sha256="b" * 64,
        regions={r: RegionImage(region=r, ami_id=f"ami-{i}", snapshot_id=f"snap-{i}", public=True)
                 for i, r in enumerate(["us-east-1", "eu-west-1"])},
    )
    boot = BootTestResult(status="skipped", reason="skipped on request (--skip-boot)")
    release = VariantRelease.assemble(manifest, boot, published, spec)
    assert release.variant.id == "trixie-ebs-hvm-x86_64" and release.variant.label == "trixie ebs hvm x86_64"
    assert list(release.packages) == ["linux-image-cloud-amd64", "sudo"]
    assert release.linux_version == "6.1.119"
    assert release.regions["eu-west-1"].ami_id == "ami-1" and release.regions["eu-west-1"].snapshot_id == "snap-1"
    assert (release.boot_mode, release.image_sha256, release.packages_sha256) == ("uefi-preferred", "b" * 64, "c" * 64)


def test_bad_records_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "2026.11.25.json"
    bad.write_text('{"release_id": 3}')
    with pytest.raises(ArchamiError, match=r"2026\.11\.25\.json is not a valid release record: field release_id"):
        load_record(bad)
    with pytest.raises(ArchamiError, match="no such releases directory"):
        load_records(tmp_path / "missing")
    (tmp_path / "notes.json").write_text("{}")  # not a release id: ignored
    bad.unlink()
    assert load_records(tmp_path) == []
