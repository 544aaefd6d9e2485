"""Kill -9 the publish at every step boundary, re-run it: exactly one AMI per region, no orphan snapshots.

The publish runs as the real CLI in a subprocess; ARCHAMI_CRASH_AT=K makes it SIGKILL itself at the K-th
boundary (archami.aws.state.boundary), including those right after a create call and before the state write.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from aws_helpers import make_build
from moto_server import FAKE_CREDENTIALS, MotoServer

from archami.aws.clients import AwsSettings, Clients
from archami.aws.state import PublishState

pytestmark = pytest.mark.integration
REGIONS = ["us-east-1", "eu-west-1"]
RELEASE = "2026.11.25"
BOUNDARIES = [
    "snapshot-started",
    "snapshot-recorded",
    "snapshot-completed",
    "snapshot-complete-recorded",
    "ami-registered",
    "ami-recorded",
    "ami-available",
    "copy-started",
    "copy-recorded",
    "copy-available",
    "made-public",
    "made-public",
    "ssm-recorded",
    "ssm-recorded",
]


def run_publish(build: Path, moto: MotoServer, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    archami = Path(sys.executable).parent / "archami"
    return subprocess.run(
        [
            str(archami),
            "publish",
            str(build),
            "--regions",
            ",".join(REGIONS),
            "--public",
            "--json",
            "--endpoint-url",
            moto.url,
            "--state",
            str(state),
            "--release-id",
            RELEASE,
        ],
        env={**os.environ, **FAKE_CREDENTIALS, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_build(tmp_path_factory.mktemp("resume"))


def test_boundaries_of_a_full_run(build: Path, moto: MotoServer, tmp_path: Path) -> None:
    log = tmp_path / "boundaries"
    result = run_publish(build, moto, tmp_path / "state.json", ARCHAMI_CRASH_LOG=str(log))
    assert result.returncode == 0, result.stderr
    names = [line.split()[1] for line in log.read_text().splitlines()]
    assert names[:10] == BOUNDARIES[:10]
    assert Counter(names[10:]) == Counter(BOUNDARIES[10:])


@pytest.mark.parametrize("crash_at", range(1, len(BOUNDARIES) + 1), ids=lambda k: f"{k}-{BOUNDARIES[k - 1]}")
def test_kill_at_boundary_then_resume(build: Path, moto: MotoServer, tmp_path: Path, crash_at: int) -> None:
    clients = Clients(AwsSettings(endpoint_url=moto.url))
    baseline = {r: snapshots(clients, r) for r in REGIONS}
    state_path = tmp_path / "state.json"
    killed = run_publish(build, moto, state_path, ARCHAMI_CRASH_AT=str(crash_at))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run_publish(build, moto, state_path)
    assert resumed.returncode == 0, resumed.stderr
    state = PublishState.model_validate_json(state_path.read_text())
    assert state.done
    name = f"debian-bookworm-ebs-hvm-x86_64-{RELEASE}"
    for region in REGIONS:
        ec2 = clients.ec2(region)
        images = ec2.describe_images(Owners=["self"])["Images"]
        assert [i["Name"] for i in images] == [name], region
        assert images[0]["ImageId"] == state.regions[region].ami_id
        perms = ec2.describe_image_attribute(ImageId=images[0]["ImageId"], Attribute="launchPermission")
        assert {"Group": "all"} in perms["LaunchPermissions"]
        owned = {m["Ebs"]["SnapshotId"] for m in images[0]["BlockDeviceMappings"] if "Ebs" in m}
        owned |= {s for s in [state.regions[region].snapshot_id] if s}
        assert snapshots(clients, region) - baseline[region] == owned, region


def snapshots(clients: Clients, region: str) -> set[str]:
    return {s["SnapshotId"] for s in clients.ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}
