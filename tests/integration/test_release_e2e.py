"""`archami release` on the Debian example against moto in server mode, end to end, through the CLI.

Reuses the session's `debian_build` (tests/integration/conftest.py) through `--builds`, and skips the boot
test (`--skip-boot`): boot tests of that same image run in the vm stage's tests, and booting here would add
minutes of CI time without testing anything of the release stage. Everything else runs for real: audit,
publish (EBS direct upload, register, copies to 3 regions, SSM), the release record, `archami latest`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from build_support import DEBIAN_VARIANT

from archami.artifacts import BuildResult
from archami.release.emulator import local_aws
from archami.release.records import load_record

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
VARIANT = DEBIAN_VARIANT  # Debian stable, as the session build
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
ARCHAMI = Path(sys.executable).parent / "archami"  # the console script installed with the package


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with local_aws() as url:
        yield url


def _archami(*args: str, crash_at: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ARCHAMI_CRASH_AT", None)
    if crash_at is not None:
        env["ARCHAMI_CRASH_AT"] = str(crash_at)
    return subprocess.run([str(ARCHAMI), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=900, check=False)


def _release(
    tmp: Path, build: BuildResult, endpoint: str, crash_at: int | None = None
) -> subprocess.CompletedProcess[str]:
    return _archami(
        "release", "examples/debian.toml", "--variant", VARIANT, "--regions", ",".join(REGIONS),
        "--endpoint-url", endpoint, "--accept-unverified", "moto",
        "--skip-boot", VARIANT, "--builds", str(build.out_dir.parent),
        "--releases", str(tmp / "releases"), "--work", str(tmp / "work"), "--public", "--json",
        crash_at=crash_at,
    )


def _images(endpoint: str, region: str) -> list[Any]:
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint)
    images: list[Any] = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [f"debian-{VARIANT}-*"]}]
    )["Images"]
    return images


def test_release_resume_latest_and_next_id(tmp_path: Path, debian_build: BuildResult, endpoint: str) -> None:
    today = datetime.now(UTC).strftime("%Y.%m.%d")
    # 1. Killed (SIGKILL) in the middle of publishing: after the source AMI is recorded, before the copies.
    killed = _release(tmp_path, debian_build, endpoint, crash_at=6)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not list((tmp_path / "releases").glob("*.json"))  # no record for an unfinished release

    # 2. The same command resumes that release (same id) and finishes it.
    resumed = _release(tmp_path, debian_build, endpoint)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first = json.loads(resumed.stdout)
    assert first["resumed"] is True and first["status"] == "complete"
    release_id = first["release_id"]
    assert release_id == today
    record = load_record(Path(first["record"]))
    (variant,) = record.variants
    assert sorted(variant.regions) == sorted(REGIONS)
    assert variant.boot_test.status == "skipped" and "--skip-boot" in variant.boot_test.reason
    assert variant.image_sha256 == debian_build.manifest.image_sha256
    assert variant.packages_sha256 == debian_build.manifest.packages_sha256
    assert variant.kernel_version == debian_build.manifest.kernel_version
    assert variant.ami_name == f"debian-{VARIANT}-{release_id}"
    for region in REGIONS:
        named = [i for i in _images(endpoint, region) if i["Name"] == variant.ami_name]
        assert [i["ImageId"] for i in named] == [variant.regions[region].ami_id]  # exactly one, no duplicate

    # 3. `archami latest` finds what was published: from AWS (SSM, describe-images) and from the records.
    for region in REGIONS:
        found = _archami("latest", "--region", region, "--variant", VARIANT, "--name", "debian",
                         "--endpoint-url", endpoint, "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["ami_id"] == variant.regions[region].ami_id
    by_tag = _archami("latest", "--region", "eu-west-1", "--variant", VARIANT, "--endpoint-url", endpoint)
    assert by_tag.stdout.strip() == variant.regions["eu-west-1"].ami_id
    offline = _archami("latest", "--region", "ap-southeast-2", "--variant", VARIANT,
                       "--releases", str(tmp_path / "releases"))
    assert offline.stdout.strip() == variant.regions["ap-southeast-2"].ami_id

    # 4. Another release the same day takes the next id; the first release's AMIs stay as they were.
    again = _release(tmp_path, debian_build, endpoint)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert second["resumed"] is False and second["release_id"] == f"{release_id}.1"
    newer = load_record(Path(second["record"]))
    for region in REGIONS:
        images = _images(endpoint, region)
        names = sorted(i["Name"] for i in images)
        assert names == [variant.ami_name, newer.variants[0].ami_name]  # one AMI per release, no duplicates
    latest = _archami("latest", "--region", "ap-southeast-2", "--variant", VARIANT, "--name", "debian",
                      "--endpoint-url", endpoint)
    assert latest.stdout.strip() == newer.variants[0].regions["ap-southeast-2"].ami_id

    # 5. The site shows both releases, the newest first.
    site = _archami("site", "--releases", str(tmp_path / "releases"), "--out", str(tmp_path / "site"), "--json")
    assert site.returncode == 0, site.stderr
    assert json.loads(site.stdout)["releases"] == [f"{release_id}.1", release_id]
