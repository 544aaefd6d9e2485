"""Publishing a small image to several emulated regions, re-running, looking up, pruning (moto server)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_helpers import REPO, RequestRecorder, make_build
from fault_proxy import FaultProxy, Faults
from import_shim import ImportSnapshotShim
from moto_server import MotoServer
from typer.testing import CliRunner

from archami.aws.clients import AwsSettings, Clients, resolve_regions
from archami.aws.publish import publish
from archami.aws.published import latest_ami, prune
from archami.aws.state import PublishState
from archami.aws.upload import EBS_BLOCK_SIZE, linear_checksum
from archami.cli import app
from archami.config.publish import PublishSettings
from archami.errors import ArchamiError
from archami.release.policy import PrunePolicy

pytestmark = pytest.mark.integration
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def snapshot_ids(clients: Clients, region: str) -> set[str]:
    return {s["SnapshotId"] for s in clients.ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def our_images(clients: Clients, region: str) -> list[Any]:
    return clients.ec2(region).describe_images(Owners=["self"])["Images"]


def test_publish_to_three_regions_then_prune(tmp_path: Path, clients: Clients, moto: MotoServer) -> None:
    build = make_build(tmp_path)
    baseline = {r: snapshot_ids(clients, r) for r in REGIONS}
    lines: list[str] = []
    records = []
    for release in ("2026.11.01", "2026.11.08", "2026.11.25"):
        records.append(
            publish(
                build,
                PublishSettings(regions=REGIONS, public=True),
                endpoint_url=moto.url,
                release_id=release,
                clients=clients,
                poll=0.05,
                log=lines.append,
            )
        )
    record = records[-1]
    assert record.ami_name == "debian-bookworm-ebs-hvm-x86_64-2026.11.25"
    assert sorted(record.regions) == sorted(REGIONS)
    assert any("Block Public Access state not implemented" in line for line in lines)
    for region in REGIONS:
        ec2 = clients.ec2(region)
        images = our_images(clients, region)
        assert len(images) == 3, region  # one per release, no duplicates
        ami = record.regions[region].ami_id
        perms = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
        assert {"Group": "all"} in perms
        tags = {t["Key"]: t["Value"] for t in next(i for i in images if i["ImageId"] == ami)["Tags"]}
        assert tags["archami:release"] == "2026.11.25" and tags["archami:variant"] == "bookworm-ebs-hvm-x86_64"
        assert latest_ami(region, "bookworm-ebs-hvm-x86_64", family="debian", clients=clients) == ami
        assert latest_ami(region, "bookworm-ebs-hvm-x86_64", clients=clients) == ami  # by tags + date
    state = PublishState.model_validate_json((build / "publish-2026.11.25.state.json").read_text())
    assert state.done and state.regions["us-east-1"].source
    assert all(r.deprecate_at == "not-implemented" and r.swept for r in state.regions.values())

    no_window = PrunePolicy(keep=1, protect_previous=None)
    dry = prune(clients, REGIONS, policy=no_window, dry_run=True)
    assert sorted({a.release_id for a in dry.plan.to_remove}) == ["2026.11.01", "2026.11.08"]
    assert len(our_images(clients, REGIONS[0])) == 3  # dry run changed nothing
    removed = prune(clients, REGIONS, policy=no_window)
    assert [s.outcome for s in removed.run.steps if s.action == "remove"] == ["done"] * 2 * len(REGIONS)  # type: ignore[union-attr]
    for region in REGIONS:
        left = our_images(clients, region)
        assert [i["ImageId"] for i in left] == [record.regions[region].ami_id]
        snapshots = snapshot_ids(clients, region) - baseline[region]
        expected = {s for s in [record.regions[region].snapshot_id] if s}
        expected |= {m["Ebs"]["SnapshotId"] for m in left[0]["BlockDeviceMappings"] if "Ebs" in m}
        assert snapshots <= expected | {record.regions[region].snapshot_id}
    # Even a policy keeping nothing newer than 2100 keeps the current release.
    everything = PrunePolicy(keep_since=datetime(2100, 1, 1, tzinfo=UTC), protect_previous=None)
    assert prune(clients, REGIONS, policy=everything).plan.to_remove == []
    for region in REGIONS:
        assert [i["ImageId"] for i in our_images(clients, region)] == [record.regions[region].ami_id]
        assert latest_ami(region, "bookworm-ebs-hvm-x86_64", family="debian", clients=clients) == \
            record.regions[region].ami_id


def test_rerun_is_idempotent(tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder) -> None:
    build = make_build(tmp_path)
    first = publish(
        build,
        PublishSettings(regions=REGIONS[:2], public=False),
        endpoint_url=moto.url,
        release_id="r1",
        clients=clients,
        poll=0.05,
    )
    creates = len(recorder.ec2_actions("RegisterImage")) + len(recorder.ec2_actions("CopyImage"))
    second = publish(
        build,
        PublishSettings(regions=REGIONS[:2], public=False),
        endpoint_url=moto.url,
        release_id="r1",
        clients=clients,
        poll=0.05,
    )
    assert second == first
    assert len(recorder.ec2_actions("RegisterImage")) + len(recorder.ec2_actions("CopyImage")) == creates
    for region in REGIONS[:2]:
        assert len(our_images(clients, region)) == 1


def test_upload_sends_exactly_the_used_blocks(tmp_path: Path, clients: Clients, moto: MotoServer) -> None:
    data = {0: b"\x01" * 4096, 3: bytes(range(256)) * 2048, 7: b"tail" * 10, 100: b"\xff" * (EBS_BLOCK_SIZE + 1)}
    build = make_build(tmp_path, data_blocks=data, zero_blocks=(5, 6, 50))
    sent: dict[int, tuple[str, bytes]] = {}
    completes: list[dict[str, str]] = []

    def record_put(params: dict[str, Any], **kwargs: Any) -> None:
        sent[params["BlockIndex"]] = (params["Checksum"], params["BlockData"])

    def record_complete(params: dict[str, Any], **kwargs: Any) -> None:
        completes.append(params)

    clients.on("provide-client-params.ebs.PutSnapshotBlock", record_put)
    clients.on("provide-client-params.ebs.CompleteSnapshot", record_complete)
    record = publish(
        build,
        PublishSettings(regions=["us-east-1"], public=False),
        endpoint_url=moto.url,
        release_id="r1",
        clients=clients,
        poll=0.05,
    )
    expected = {0, 3, 7, 100, 101}  # block 101 holds the one byte past block 100; 5, 6, 50 are zeroes
    assert set(sent) == expected
    image = (build / "image.raw").read_bytes()
    digests = []
    for index in sorted(expected):
        checksum, block = sent[index]
        assert block == image[index * EBS_BLOCK_SIZE : (index + 1) * EBS_BLOCK_SIZE].ljust(EBS_BLOCK_SIZE, b"\0")
        assert base64.b64decode(checksum) == hashlib.sha256(block).digest()
        digests.append(hashlib.sha256(block).digest())
    assert completes[0]["ChangedBlocksCount"] == len(expected)
    assert completes[0]["Checksum"] == linear_checksum(digests)
    assert completes[0]["ChecksumAggregationMethod"] == "LINEAR"
    # And read back from the emulated snapshot: exactly these blocks exist.
    snapshot = record.regions["us-east-1"].snapshot_id
    assert snapshot
    listed = clients.ebs("us-east-1").list_snapshot_blocks(SnapshotId=snapshot)["Blocks"]
    assert sorted(b["BlockIndex"] for b in listed) == sorted(expected)


def test_s3_import_fallback_uploads_then_reports_missing_import(
    tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder
) -> None:
    """moto has no ImportSnapshot: the image reaches S3, the exact request is sent, the error is one line."""
    build = make_build(tmp_path)
    with pytest.raises(ArchamiError, match="ImportSnapshot is not implemented by this endpoint"):
        publish(
            build,
            PublishSettings(regions=["eu-west-1"], public=False, method="s3-import", bucket="archami-import"),
            endpoint_url=moto.url,
            release_id="r1",
            clients=clients,
            poll=0.05,
        )
    key = "debian-bookworm-ebs-hvm-x86_64-r1/image.raw"
    head = clients.s3("eu-west-1").head_object(Bucket="archami-import", Key=key)
    assert head["ContentLength"] == (build / "image.raw").stat().st_size
    (form,) = recorder.ec2_actions("ImportSnapshot")
    assert form["DiskContainer.Format"] == "RAW"
    assert form["DiskContainer.UserBucket.S3Bucket"] == "archami-import"
    assert form["DiskContainer.UserBucket.S3Key"] == key
    assert form["TagSpecification.1.ResourceType"] == "import-snapshot-task"
    state = PublishState.model_validate_json((build / "publish-r1.state.json").read_text())
    assert state.regions["eu-west-1"].s3_object == f"archami-import/{key}"


def test_cli_publish_and_prune(tmp_path: Path, moto: MotoServer) -> None:
    build = make_build(tmp_path)
    runner = CliRunner()
    for release in ("r1", "r2"):
        result = runner.invoke(
            app,
            [
                "publish",
                str(build),
                "--regions",
                "us-east-1,eu-west-1",
                "--json",
                "--endpoint-url",
                moto.url,
                "--release-id",
                release,
            ],
        )
        assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record["regions"]) == {"us-east-1", "eu-west-1"}
    table = runner.invoke(
        app,
        ["publish", str(build), "--regions", "us-east-1,eu-west-1", "--endpoint-url", moto.url, "--release-id", "r2"],
    )  # the human view: progress bar, AMI table
    assert table.exit_code == 0, table.output
    assert record["regions"]["eu-west-1"]["ami_id"] in table.stdout
    missing = runner.invoke(app, ["publish", str(tmp_path / "nothing"), "--endpoint-url", moto.url])
    assert missing.exit_code == 2 and "Invalid value" in missing.output  # refused by the parser, before any work
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["publish", str(tmp_path / "empty"), "--endpoint-url", moto.url])
    assert empty.exit_code != 0 and "run `archami build` first" in str(empty.exception)
    args = ["prune", "--regions", "us-east-1,eu-west-1", "--keep", "1", "--protect-previous", "0", "--endpoint-url",
            moto.url, "--json"]
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert sorted(a["release_id"] for a in json.loads(dry.stdout)["removed"]) == ["r1", "r1"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert json.loads(runner.invoke(app, args).stdout)["removed"] == []


def test_all_regions_means_the_enabled_regions_of_the_partition(clients: Clients) -> None:
    regions = resolve_regions(clients, "all", "eu-west-1")
    assert regions[0] == "eu-west-1" and "us-east-1" in regions and len(regions) == len(set(regions))
    assert not [r for r in regions if r.startswith(("cn-", "us-gov-"))]  # moto lists every partition's
    assert resolve_regions(clients, ["eu-west-1", "us-east-1"], None) == ["eu-west-1", "us-east-1"]
    gov = resolve_regions(clients, "all", "us-gov-west-1")
    assert set(gov) == {"us-gov-west-1", "us-gov-east-1"}


def test_s3_import_fallback_end_to_end(tmp_path: Path, moto: MotoServer) -> None:
    """With ImportSnapshot answered as EC2 does (moto lacks it), the fallback registers the imported snapshot,
    tags it, and removes the S3 copy."""
    build = make_build(tmp_path)
    direct = Clients(AwsSettings(endpoint_url=moto.url))
    shim = ImportSnapshotShim(direct, "eu-west-1")
    with FaultProxy(moto.url, Faults(), intercept=shim) as proxy:
        proxied = Clients(AwsSettings(endpoint_url=proxy.url))
        recorder = RequestRecorder()
        proxied.on("before-send", recorder)
        record = publish(
            build,
            PublishSettings(regions=["eu-west-1", "us-east-1"], method="s3-import", bucket="archami-import"),
            endpoint_url=proxy.url,
            release_id="r1",
            clients=proxied,
            poll=0.05,
        )
    (task_id,) = shim.tasks
    imported = shim.tasks[task_id]["snapshot"]
    assert record.regions["eu-west-1"].snapshot_id == imported
    (form,) = recorder.ec2_actions("RegisterImage")
    assert form["BlockDeviceMapping.1.Ebs.SnapshotId"] == imported
    assert form["BlockDeviceMapping.1.Ebs.VolumeSize"] == "1"
    assert shim.calls[0]["ClientToken"] and shim.calls[0]["DiskContainer.Format"] == "RAW"
    snapshot = direct.ec2("eu-west-1").describe_snapshots(SnapshotIds=[imported])["Snapshots"][0]
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]}["archami:release"] == "r1"
    assert direct.s3("eu-west-1").list_objects_v2(Bucket="archami-import").get("KeyCount") == 0
    state = PublishState.model_validate_json((build / "publish-r1.state.json").read_text())
    assert state.regions["eu-west-1"].import_task_id == task_id and state.done
    assert len(direct.ec2("us-east-1").describe_images(Owners=["self"])["Images"]) == 1


def test_cli_publish_takes_the_definitions_table_and_flags_over_it(tmp_path: Path, moto: MotoServer) -> None:
    """`archami publish` reads [publish] from the build's definition (here --definition); flags win."""
    build = make_build(tmp_path)
    definition = tmp_path / "debian.toml"
    definition.write_text(
        (REPO / "examples" / "debian.toml").read_text()
        + '\n[publish]\nregions = ["eu-west-1", "us-east-1"]\nssm_prefix = "/images"\ndeprecate = "never"\n'
        'tags = { team = "images", tier = "base" }\n[publish.share]\naccounts = ["111122223333"]\n'
    )
    result = CliRunner().invoke(
        app,
        ["publish", str(build), "--definition", str(definition), "--regions", "us-west-2,eu-west-1",
         "--tag", "team=platform", "--endpoint-url", moto.url, "--release-id", "r1", "--json"],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert list(record["regions"]) == ["us-west-2", "eu-west-1"]  # the flag's list, the first is the source
    clients = Clients(AwsSettings(endpoint_url=moto.url))
    for region, image in record["regions"].items():
        ec2 = clients.ec2(region)
        (ami,) = ec2.describe_images(ImageIds=[image["ami_id"]])["Images"]
        assert {"team": "platform", "tier": "base"}.items() <= {t["Key"]: t["Value"] for t in ami["Tags"]}.items()
        permissions = ec2.describe_image_attribute(ImageId=image["ami_id"], Attribute="launchPermission")
        assert permissions["LaunchPermissions"] == [{"UserId": "111122223333"}]  # shared, not public
        name = "/images/debian/bookworm-ebs-hvm-x86_64/latest"
        assert clients.ssm(region).get_parameter(Name=name)["Parameter"]["Value"] == image["ami_id"]
    state = PublishState.model_validate_json((build / "publish-r1.state.json").read_text())
    assert all(r.deprecate_at is None and r.shared == ["111122223333"] for r in state.regions.values())
    bad = CliRunner().invoke(app, ["publish", str(build), "--definition", str(definition), "--bucket", "Bad_Name",
                                   "--endpoint-url", moto.url])
    assert bad.exit_code == 1 and str(bad.exception).startswith("--bucket: 'Bad_Name' is not an S3 bucket name")
