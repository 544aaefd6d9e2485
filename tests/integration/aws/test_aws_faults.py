"""Publish through a proxy that throttles, answers 5xx and drops connections on a seeded fraction of calls:
the publish completes and leaves exactly one AMI per region and no orphan snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_helpers import make_build
from fault_proxy import FaultProxy, Faults
from moto_server import MotoServer

from archami.aws.clients import AwsSettings, Clients
from archami.aws.publish import publish
from archami.config.publish import PublishSettings

pytestmark = pytest.mark.integration
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]


def snapshots(clients: Clients, region: str) -> set[str]:
    return {s["SnapshotId"] for s in clients.ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_publish_through_faults(tmp_path: Path, moto: MotoServer, seed: int) -> None:
    build = make_build(tmp_path)
    direct = Clients(AwsSettings(endpoint_url=moto.url))
    baseline = {r: snapshots(direct, r) for r in REGIONS}
    # The first answer of each create call is lost after the service acted: the retry makes a duplicate
    # (moto ignores ClientToken), which the publish must find and remove.
    faults = Faults(
        throttle=0.1,
        server_error=0.08,
        drop_before=0.06,
        drop_after=0.06,
        seed=seed,
        lose_first_answer=frozenset({"StartSnapshot", "RegisterImage", "CopyImage"}),
        opening=("throttle", "server_error", "drop_before", "drop_after"),
    )
    with FaultProxy(moto.url, faults) as proxy:
        faulty = Clients(AwsSettings(endpoint_url=proxy.url, connect_timeout=2, read_timeout=10))
        record = publish(
            build,
            PublishSettings(regions=REGIONS, public=True),
            endpoint_url=proxy.url,
            release_id="r1",
            clients=faulty,
            poll=0.05,
        )
    assert set(proxy.injected) == {"throttle", "server_error", "drop_before", "drop_after"}, proxy.injected
    assert sum(proxy.injected.values()) >= 10
    assert proxy.lost == {"StartSnapshot", "RegisterImage", "CopyImage"}
    for region in REGIONS:
        images = direct.ec2(region).describe_images(Owners=["self"])["Images"]
        assert [i["ImageId"] for i in images] == [record.regions[region].ami_id], region
        owned = {m["Ebs"]["SnapshotId"] for m in images[0]["BlockDeviceMappings"] if "Ebs" in m}
        owned |= {s for s in [record.regions[region].snapshot_id] if s}
        assert snapshots(direct, region) - baseline[region] == owned, region
