"""`archami release` of a definition with an ebs and an instance-store variant, against moto in server mode.

Real builds (the Debian example's packages, so the shared root cache makes them warm), a real audit, no boot
test (the instance-store image cannot boot here, and the same ebs image is boot-tested by the vm stage's
tests: `--skip-boot` it), then the publish to two emulated regions with the bucket, certificate, sharing, SSM prefix
and tags from the definition's [publish] table and `--public` and a tag from the command line. Checked
afterwards: the release record, what EC2 would read from S3 (decrypted with EC2's key, it is the very image),
and that nothing else is left behind in EC2, S3 or on the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aws_helpers import throwaway_certificate
from build_support import CACHE_DIR, DEBIAN_EXAMPLE
from moto_server import FAKE_CREDENTIALS, MotoServer

from archami.aws.bundle import parse_manifest, unbundle
from archami.aws.clients import AwsSettings, Clients
from archami.config import load_definition
from archami.image.manifest import sparse_sha256
from archami.release.records import load_record

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REGIONS = ["eu-west-1", "us-east-1"]
BUCKET = "archami-release-bundles"
SHARED_WITH = "111122223333"


def write_definition(directory: Path, certificate: Path) -> Path:
    """The Debian example (same packages: a warm root cache) as one release, ebs + instance-store."""
    example = DEBIAN_EXAMPLE.read_text().split("\n[matrix]")[0]
    definition = directory / "debian-s3.toml"
    definition.write_text(
        example
        + f"""
[matrix]
release = ["trixie"]
root_device = ["ebs", "instance-store"]
virtualization = ["hvm"]

[publish]
regions = {json.dumps(REGIONS)}
bucket = "{BUCKET}"
bucket_prefix = "releases"
ec2_certificate = "{certificate}"
ssm_prefix = "/images"
tags = {{ team = "images" }}

[publish.share]
accounts = ["{SHARED_WITH}"]
"""
    )
    return definition


def snapshots(clients: Clients, region: str) -> set[str]:
    return {s["SnapshotId"] for s in clients.ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if str(path) in line]


def test_release_with_an_instance_store_variant(tmp_path: Path, moto: MotoServer) -> None:
    if os.geteuid() != 0:
        pytest.fail("building an image needs root (mmdebstrap --mode=root, chroot, file ownership)")
    certificate, ec2_key = throwaway_certificate(tmp_path)
    definition = write_definition(tmp_path, certificate)
    variants = {v.root_device: v.id for v in load_definition(definition).variants}
    assert set(variants) == {"ebs", "instance-store"}
    direct = Clients(AwsSettings(endpoint_url=moto.url))
    baseline = {r: snapshots(direct, r) for r in REGIONS}  # moto's own, behind its built-in images
    archami = Path(sys.executable).parent / "archami"
    started = time.monotonic()
    result = subprocess.run(
        [str(archami), "release", str(definition), "--endpoint-url", moto.url, "--accept-unverified", "moto",
         "--skip-boot", variants["ebs"],
         "--releases", str(tmp_path / "releases"), "--work", str(tmp_path / "work"), "--cache", str(CACHE_DIR),
         "--public", "--tag", "run=e2e", "--json"],
        env={**os.environ, **FAKE_CREDENTIALS}, capture_output=True, text=True, timeout=3600, check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    outcome = json.loads(result.stdout)
    steps = {vid: p["seconds"] for vid, p in outcome["state"]["variants"].items()}
    print(f"archami release, 2 variants to {len(REGIONS)} regions: {time.monotonic() - started:.0f}s {steps}")
    assert outcome["status"] == "complete"
    record = load_record(Path(outcome["record"]))
    by_root = {v.variant.root_device: v for v in record.variants}
    assert {k: v.variant.id for k, v in by_root.items()} == variants
    for release in record.variants:
        assert sorted(release.regions) == sorted(REGIONS)
        assert release.boot_test.status == "skipped"
    store, ebs = by_root["instance-store"], by_root["ebs"]
    assert "instance-store" in (store.boot_test.reason or "")
    location = f"{BUCKET}/releases/{store.ami_name}/image.manifest.xml"
    assert store.regions[REGIONS[0]].image_location == location
    assert all(image.snapshot_id is None for image in store.regions.values())  # (moto makes one up regardless)

    s3 = direct.s3(REGIONS[0])
    # What EC2 reads from S3 is the bundle of the very image: decrypted with EC2's key, the built image.raw.
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    prefix = f"releases/{store.ami_name}/"
    manifest_key = location.removeprefix(f"{BUCKET}/")
    assert manifest_key in keys and all(k.startswith(prefix) for k in keys)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    for key in keys:
        s3.download_file(BUCKET, key, str(fetched / key.removeprefix(prefix)))
    bundle = parse_manifest(fetched / "image.manifest.xml")
    assert sorted(k.removeprefix(prefix) for k in keys) == sorted(["image.manifest.xml", *(n for n, _ in bundle.parts)])
    assert bundle.architecture == "x86_64" and bundle.size == store.image_size
    restored = unbundle(fetched / "image.manifest.xml", ec2_key, tmp_path / "restored")
    assert sparse_sha256(restored) == store.image_sha256  # the manifest's digest, holes read as zeroes

    # Nothing leaked: per region exactly the two AMIs of the record, the snapshots behind them, the settings.
    for region in REGIONS:
        ec2 = direct.ec2(region)
        images = {i["ImageId"]: i for i in ec2.describe_images(Owners=["self"])["Images"]}
        assert sorted(images) == sorted(v.regions[region].ami_id for v in record.variants), region
        owned: set[str] = {s for s in [ebs.regions[region].snapshot_id] if s}
        for ami_id, image in images.items():
            owned |= {m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if "Ebs" in m}
            tags = {t["Key"]: t["Value"] for t in image["Tags"]}
            assert {"team": "images", "run": "e2e", "archami:release": record.release_id}.items() <= tags.items()
            permissions = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
            assert {"Group": "all"} in permissions["LaunchPermissions"]  # --public over the definition's default
            assert {"UserId": SHARED_WITH} in permissions["LaunchPermissions"]
        assert snapshots(direct, region) - baseline[region] == owned, region
        ssm = direct.ssm(region)
        for release in record.variants:
            name = f"/images/{record.definition_name}/{release.variant.id}/latest"
            assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == release.regions[region].ami_id
        parameters: list[Any] = ssm.describe_parameters()["Parameters"]
        assert len(parameters) == len(record.variants), region
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=BUCKET)  # no part upload left open
    assert mounts_under(tmp_path) == []
    publish_states = sorted((tmp_path / "releases" / ".state").glob("*.publish/*.json"))
    assert len(publish_states) == 2 and all(json.loads(p.read_text())["done"] for p in publish_states)
