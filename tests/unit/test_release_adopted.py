"""A build's own boot tests are adopted by the release only when they passed, for every firmware, on its image."""

from pathlib import Path

from archami.artifacts import (
    MANIFEST_NAME,
    CheckResult,
    Manifest,
    PackageInfo,
    boot_report_name,
    write_json_atomic,
)
from archami.artifacts import (
    TestReport as BootReport,
)
from archami.config import load_definition
from archami.release.adopted import passed_boot_reports
from archami.release.steps import firmwares_for

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_definition(ROOT / "examples" / "debian.toml").specs[0]  # trixie x86_64: bios and uefi
IMAGE = "b" * 64


def _build(tmp_path: Path, reports: dict[str, tuple[bool, str]]) -> Path:
    v = SPEC.variant
    write_json_atomic(tmp_path / MANIFEST_NAME, Manifest(
        archami_version="0.1.0", definition_name="debian", definition_path="examples/debian.toml",
        definition_sha256="a" * 64, variant=v, variant_id=v.id, built_at="2026-12-01T03:00:00Z", build_seconds=60.0,
        kernel_version="6.12.0-1-cloud-amd64", boot_mode=v.boot_mode, image_size=2 * 1024**3,
        used_bytes=400 * 1024**2, image_sha256=IMAGE, packages=[PackageInfo(name="sudo", version="1.9.16p2-1")],
        packages_sha256="c" * 64,
    ))
    for firmware, (ok, sha) in reports.items():
        write_json_atomic(tmp_path / boot_report_name(firmware), BootReport(
            image_sha256=sha, firmware=firmware, ok=ok, boot_to_ssh_seconds=40.0 if ok else None,  # type: ignore[arg-type]
            checks=[CheckResult(name="SSH login with the metadata key", ok=ok)],
        ))
    return tmp_path


def test_passed_reports_for_every_firmware_are_adopted(tmp_path: Path) -> None:
    firmwares = list(firmwares_for(SPEC.variant))
    assert firmwares == ["bios", "uefi"]
    build = _build(tmp_path, {f: (True, IMAGE) for f in firmwares})
    adopted = passed_boot_reports(build, firmwares)
    assert adopted is not None and [r.firmware for r in adopted] == firmwares


def test_a_missing_failed_or_foreign_report_means_the_release_boots_it(tmp_path: Path) -> None:
    firmwares = list(firmwares_for(SPEC.variant))
    assert passed_boot_reports(_build(tmp_path / "a", {"bios": (True, IMAGE)}), firmwares) is None
    assert passed_boot_reports(_build(tmp_path / "b", {"bios": (True, IMAGE), "uefi": (False, IMAGE)}),
                               firmwares) is None
    assert passed_boot_reports(_build(tmp_path / "c", {"bios": (True, IMAGE), "uefi": (True, "d" * 64)}),
                               firmwares) is None
    assert passed_boot_reports(tmp_path / "nothing", firmwares) is None
