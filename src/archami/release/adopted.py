"""Boot tests a finished build brings with it, so `archami release --builds` need not boot it again.

In CI each variant is built and boot-tested in a job of its own (`ci/`), and one release job adopts every
build. A build directory whose boot-test-<firmware>.json reports passed, for every firmware the release
tests, on the very image of its manifest is taken as tested; anything else (a report missing, failed, or of
another image) and the release boots the image itself.
"""

from __future__ import annotations

from pathlib import Path

from archami.artifacts import MANIFEST_NAME, ArtifactError, Manifest, TestReport, boot_report_name, read_json


def passed_boot_reports(build_dir: Path, firmwares: list[str]) -> list[TestReport] | None:
    """The passed reports of `build_dir` for each of `firmwares`, in order; None unless all are there."""
    try:
        image_sha256 = read_json(build_dir / MANIFEST_NAME, Manifest).image_sha256
        reports = [read_json(build_dir / boot_report_name(f), TestReport) for f in firmwares]
    except ArtifactError:
        return None
    pairs = zip(reports, firmwares, strict=True)
    usable = all(r.ok and r.image_sha256 == image_sha256 and r.firmware == f for r, f in pairs)
    return reports if reports and usable else None
