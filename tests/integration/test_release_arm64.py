"""A release of the Debian example with its Graviton variant next to x86_64, through the CLI against moto in
server mode: both AMIs published (EBS direct upload, RegisterImage, a copy to a second region, SSM "latest"
parameters), one release record with both variants, the release page with both columns, `latest --arch`.

Reuses the session's builds of both variants (`--builds`) and skips the boot tests (`--skip-boot all`): they
run in test_boot_debian.py and test_boot_arm64.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from build_support import ARM64_VARIANT, DEBIAN_VARIANT

from archami.artifacts import BuildResult
from archami.release.emulator import local_aws
from archami.release.records import load_record

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
ARCHAMI = Path(sys.executable).parent / "archami"
REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with local_aws() as url:
        yield url


def _archami(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ARCHAMI_CRASH_AT"}
    return subprocess.run([str(ARCHAMI), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=900,
                          check=False)


def test_arm64_and_x86_64_released_together(
    tmp_path: Path, debian_build: BuildResult, arm64_build: BuildResult, endpoint: str
) -> None:
    builds = tmp_path / "builds"
    builds.mkdir()
    for build in (debian_build, arm64_build):
        (builds / build.out_dir.name).symlink_to(build.out_dir)
    released = _archami(
        "release", "examples/debian.toml", "--variant", f"{DEBIAN_VARIANT},{ARM64_VARIANT}",
        "--regions", ",".join(REGIONS), "--endpoint-url", endpoint,
        "--accept-unverified", "moto", "--skip-boot", "all", "--builds", str(builds),
        "--releases", str(tmp_path / "releases"), "--work", str(tmp_path / "work"), "--json",
    )
    assert released.returncode == 0, released.stderr[-3000:]
    outcome = json.loads(released.stdout)
    record = load_record(Path(outcome["record"]))
    # x86_64 first, then aarch64: the release table's column order.
    assert [v.variant.id for v in record.variants] == [DEBIAN_VARIANT, ARM64_VARIANT]
    x86, arm = record.variants
    assert arm.boot_mode == "uefi" and x86.boot_mode == "uefi-preferred"
    assert arm.image_sha256 == arm64_build.manifest.image_sha256 and arm.kernel_version.endswith("-cloud-arm64")
    for region in REGIONS:
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint)
        (image,) = ec2.describe_images(ImageIds=[arm.regions[region].ami_id])["Images"]
        assert image["Name"] == f"debian-{ARM64_VARIANT}-{record.release_id}"
        ssm = boto3.client("ssm", region_name=region, endpoint_url=endpoint)
        for variant in (x86, arm):
            name = f"/archami/debian/{variant.variant.id}/latest"
            assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == variant.regions[region].ami_id

    # `latest --arch`: the same variant for the other architecture, from AWS and from the records.
    for source in (("--endpoint-url", endpoint, "--name", "debian"), ("--releases", str(tmp_path / "releases"))):
        found = _archami("latest", "--region", "eu-west-1", "--variant", DEBIAN_VARIANT, "--arch", "arm64", *source)
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() == arm.regions["eu-west-1"].ami_id != x86.regions["eu-west-1"].ami_id

    # The release page: both columns, each region's two AMI ids in its row.
    site = _archami("site", "--releases", str(tmp_path / "releases"), "--out", str(tmp_path / "site"), "--json")
    assert site.returncode == 0, site.stderr
    files = json.loads(site.stdout)
    markdown = Path(files["markdown"]).read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| region |"))
    assert header.index("trixie ebs hvm x86_64") < header.index("trixie ebs hvm aarch64")
    for region in REGIONS:
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {region} |"))
        assert x86.regions[region].ami_id in row and arm.regions[region].ami_id in row
    html = Path(files["index"]).read_text()
    assert "trixie ebs hvm aarch64" in html and arm.regions["us-east-1"].ami_id in html
    print(header)
