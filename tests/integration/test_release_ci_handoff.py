"""The CI hand-off of ci/: each variant built and boot-tested in its own job, one `archami release --builds`.

The release job receives a build directory per variant with the build's own boot-test-<firmware>.json; the
release must adopt those boot results (recorded as passed, with their timings) instead of booting the image
again, and publish. The build is the session's real `debian_build`; the reports stand in for what the build
job's `archami boot` wrote (the boot itself is tested by test_boot_debian.py). Against moto in server mode.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from archami.artifacts import (
    AUDIT_REPORT_NAME,
    IMAGE_NAME,
    MANIFEST_NAME,
    BuildResult,
    CheckResult,
    boot_report_name,
    write_json_atomic,
)
from archami.artifacts import TestReport as BootReport
from archami.config import load_definition
from archami.release.emulator import local_aws
from archami.release.records import load_record
from archami.release.steps import firmwares_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ARCHAMI = Path(sys.executable).parent / "archami"
DEFINITION = REPO / "examples" / "debian.toml"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with local_aws() as url:
        yield url


def handed_over(build: BuildResult, builds: Path) -> list[str]:
    """The build job's artifact: image, manifest, audit and its passed boot reports; returns the firmwares."""
    out = builds / build.manifest.variant_id
    out.mkdir(parents=True)
    os.link(build.image, out / IMAGE_NAME)
    for name in (MANIFEST_NAME, AUDIT_REPORT_NAME):
        shutil.copyfile(build.out_dir / name, out / name)
    firmwares = list(firmwares_for(build.manifest.variant))
    for seconds, firmware in enumerate(firmwares, start=41):
        write_json_atomic(out / boot_report_name(firmware), BootReport(
            image_sha256=build.manifest.image_sha256, firmware=firmware, ok=True,  # type: ignore[arg-type]
            boot_to_ssh_seconds=float(seconds), checks=[CheckResult(name="SSH login with the metadata key", ok=True)],
        ))
    return firmwares


def test_release_adopts_the_build_jobs_boot_tests(tmp_path: Path, debian_build: BuildResult, endpoint: str) -> None:
    assert load_definition(DEFINITION).sha256 == debian_build.manifest.definition_sha256
    variant = debian_build.manifest.variant_id
    firmwares = handed_over(debian_build, tmp_path / "builds")
    result = subprocess.run(
        [str(ARCHAMI), "release", str(DEFINITION), "--variant", variant, "--regions", "us-east-1",
         "--endpoint-url", endpoint, "--builds", str(tmp_path / "builds"), "--releases", str(tmp_path / "releases"),
         "--work", str(tmp_path / "work"), "--accept-unverified", "moto", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=1200, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "boot test passed with the build" in result.stderr and "boot test (bios)" not in result.stderr
    progress = json.loads(result.stdout)["state"]["variants"][variant]
    assert progress["build_reused"] is True and progress["boot"]["status"] == "passed"
    assert [(r["firmware"], r["boot_to_ssh_seconds"]) for r in progress["boot"]["runs"]] == [
        (f, float(s)) for s, f in enumerate(firmwares, start=41)]
    record = load_record(Path(json.loads(result.stdout)["record"]))
    assert record.status == "complete" and record.variants[0].boot_test.status == "passed"
