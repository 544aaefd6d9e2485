"""Kill -9 at the step boundaries of the two other publish paths, then re-run: instance-store (S3 bundle)
and the S3 + ImportSnapshot fallback (through a proxy answering ImportSnapshot as EC2 does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_helpers import debian_variant, make_build, throwaway_certificate
from fault_proxy import FaultProxy, Faults
from import_shim import ImportSnapshotShim
from moto_server import FAKE_CREDENTIALS, MotoServer

from archami.aws.clients import AwsSettings, Clients
from archami.aws.state import PublishState

pytestmark = pytest.mark.integration
REGIONS = ["eu-west-1", "us-east-1"]
BUCKET = "archami-resume"
TAIL = ["ami-registered", "ami-recorded", "ami-available", "copy-started", "copy-recorded", "copy-available"]
EXPOSE = ["made-public", "made-public", "ssm-recorded", "ssm-recorded"]
BOUNDARIES = {
    "instance-store": ["bundle-uploaded", *TAIL, *EXPOSE],
    "s3-import": ["s3-uploaded", "import-recorded", *TAIL, *EXPOSE],
}
# The copy/expose boundaries run the same code on every path and are all killed in test_aws_resume.py;
# here, every boundary up to the registered AMI, whose input (bundle, imported snapshot) differs per path.
CASES = [(p, k) for p, names in BOUNDARIES.items() for k in range(1, names.index("ami-available") + 2)]


@pytest.fixture
def endpoint(moto: MotoServer) -> Iterator[str]:
    """moto behind a proxy that adds ImportSnapshot (passes everything else through untouched)."""
    with FaultProxy(
        moto.url, Faults(), intercept=ImportSnapshotShim(Clients(AwsSettings(endpoint_url=moto.url)), REGIONS[0])
    ) as proxy:
        yield proxy.url


def run_publish(
    path: str, build: Path, endpoint: str, state: Path, cert: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    archami = Path(sys.executable).parent / "archami"
    args = [
        str(archami),
        "publish",
        str(build),
        "--regions",
        ",".join(REGIONS),
        "--public",
        "--json",
        "--endpoint-url",
        endpoint,
        "--state",
        str(state),
        "--release-id",
        "r1",
        "--bucket",
        BUCKET,
    ]
    args += ["--ec2-cert", str(cert)] if path == "instance-store" else ["--method", "s3-import"]
    return subprocess.run(
        args, env={**os.environ, **FAKE_CREDENTIALS, **env}, capture_output=True, text=True, timeout=300
    )


def build_for(path: str, root: Path) -> Path:
    if path == "instance-store":
        return make_build(root, debian_variant(root_device="instance-store", virtualization="paravirtual"))
    return make_build(root)


@pytest.mark.parametrize("path", sorted(BOUNDARIES))
def test_boundaries_of_a_full_run(path: str, endpoint: str, tmp_path: Path) -> None:
    log = tmp_path / "boundaries"
    cert, _ = throwaway_certificate(tmp_path)
    result = run_publish(
        path, build_for(path, tmp_path), endpoint, tmp_path / "s.json", cert, ARCHAMI_CRASH_LOG=str(log)
    )
    assert result.returncode == 0, result.stderr
    names = [line.split()[1] for line in log.read_text().splitlines()]
    expected = BOUNDARIES[path]
    assert names[: -len(EXPOSE)] == expected[: -len(EXPOSE)]
    assert Counter(names[-len(EXPOSE) :]) == Counter(EXPOSE)


@pytest.mark.parametrize(("path", "crash_at"), CASES, ids=[f"{p}-{k}-{BOUNDARIES[p][k - 1]}" for p, k in CASES])
def test_kill_at_boundary_then_resume(
    path: str, crash_at: int, moto: MotoServer, endpoint: str, tmp_path: Path
) -> None:
    clients = Clients(AwsSettings(endpoint_url=moto.url))
    baseline = {r: snapshots(clients, r) for r in REGIONS}
    build = build_for(path, tmp_path)
    cert, _ = throwaway_certificate(tmp_path)
    state_path = tmp_path / "state.json"
    killed = run_publish(path, build, endpoint, state_path, cert, ARCHAMI_CRASH_AT=str(crash_at))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run_publish(path, build, endpoint, state_path, cert)
    assert resumed.returncode == 0, resumed.stderr
    state = PublishState.model_validate_json(state_path.read_text())
    assert state.done
    for region in REGIONS:
        images = clients.ec2(region).describe_images(Owners=["self"])["Images"]
        assert [i["ImageId"] for i in images] == [state.regions[region].ami_id], region
        owned = {m["Ebs"]["SnapshotId"] for m in images[0].get("BlockDeviceMappings", []) if "Ebs" in m}
        owned |= {s for s in [state.regions[region].snapshot_id] if s}
        assert snapshots(clients, region) - baseline[region] == owned, region
    listed = clients.s3(REGIONS[0]).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    keys = sorted(o["Key"] for o in listed)
    if path == "s3-import":
        assert keys == []  # the raw image is deleted once imported
    else:
        prefix = "debian-bookworm-instance-store-paravirtual-x86_64-r1/"
        assert keys == [f"{prefix}image.manifest.xml", f"{prefix}image.part.00"]


def snapshots(clients: Clients, region: str) -> set[str]:
    return {s["SnapshotId"] for s in clients.ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}
