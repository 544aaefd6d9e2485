"""`archami prune` against moto in server mode, through a proxy that answers DescribeImages as AWS would
(creation dates, DeregistrationProtection): the plan, the exact EC2 requests of a run, no leaked snapshot,
the calls moto does not implement reported as such, and what the records and prune-log.json keep."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aws_helpers import RequestRecorder
from fault_proxy import FaultProxy, Faults
from moto_server import MotoServer
from patch_proxy import PatchProxy, child, each_image, set_field
from typer.testing import CliRunner

from archami.aws.clients import AwsSettings, Clients
from archami.aws.images import archami_tags, image_snapshot_ids, snapshots_tagged, tag_list
from archami.aws.published import prune
from archami.cli import app
from archami.release.policy import PrunePolicy
from archami.release.records import RegionAmi, VerificationSummary, load_records, save_record
from archami.release.site import build_site

pytestmark = pytest.mark.integration
REGIONS = ["us-east-1", "eu-west-1"]
VARIANT = "bookworm-ebs-hvm-x86_64"
RELEASES = ["2026.11.01", "2026.11.08", "2026.11.15", "2026.11.22", "2026.11.29"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RECORDS = Path(__file__).parents[2] / "unit" / "release_records" / "debian"
Seeded = dict[tuple[str, str], tuple[str, set[str]]]  # (release, region) -> (AMI, its snapshots)


def seed(clients: Clients) -> Seeded:
    """Five weekly releases in two regions, each AMI with its snapshots tagged as archami tags them."""
    found: Seeded = {}
    for release in RELEASES:
        tags = tag_list(archami_tags("debian", VARIANT, release))
        for region in REGIONS:
            ec2 = clients.ec2(region)
            volume = ec2.create_volume(AvailabilityZone=f"{region}a", Size=1)["VolumeId"]
            snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
            ec2.delete_volume(VolumeId=volume)
            ami = ec2.register_image(
                Name=f"debian-{VARIANT}-{release}", Architecture="x86_64", RootDeviceName="/dev/xvda",
                VirtualizationType="hvm",
                BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])["ImageId"]
            (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
            snapshots = {snapshot, *image_snapshot_ids(image)}
            ec2.create_tags(Resources=[ami, *snapshots], Tags=tags)
            found[(release, region)] = (ami, snapshots)
    for region in REGIONS:
        clients.ssm(region).put_parameter(Name=f"/archami/debian/{VARIANT}/latest", Type="String", Overwrite=True,
                                          Value=found[(RELEASES[-1], region)][0])
    return found


def as_aws(proxy: PatchProxy, protected: set[str]) -> None:
    """DescribeImages as AWS answers it: the release's date as CreationDate, the protection state."""

    def complete(item: ET.Element) -> None:
        tags = {child(t, "key").text: child(t, "value").text for t in child(item, "tagSet") or []}  # type: ignore[union-attr]
        release = tags.get("archami:release") or "1970.01.01"
        set_field(item, "creationDate", release.replace(".", "-") + "T10:00:00.000Z")
        ami = child(item, "imageId").text  # type: ignore[union-attr]
        set_field(item, "deregistrationProtection", "enabled" if ami in protected else "disabled")

    proxy.ec2_patches["DescribeImages"] = [each_image(complete)]


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[PatchProxy]:
    server = PatchProxy(moto.url)
    yield server
    server.stop()


def _snapshots(clients: Clients, region: str) -> set[str]:
    return {s["SnapshotId"] for s in clients.ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def _images(clients: Clients, region: str) -> set[str]:
    return {i["ImageId"] for i in clients.ec2(region).describe_images(Owners=["self"])["Images"]}


def test_prune_keeps_current_window_and_protected_sends_exactly_these_requests_and_leaks_nothing(
    moto: MotoServer, proxy: PatchProxy, clients: Clients, recorder: RequestRecorder
) -> None:
    baseline = {r: _snapshots(clients, r) for r in REGIONS}
    seeded = seed(clients)
    protected_ami = seeded[("2026.11.08", "us-east-1")][0]
    as_aws(proxy, {protected_ami})
    through = Clients(AwsSettings(endpoint_url=proxy.url))
    seen = RequestRecorder()
    through.on("before-send", seen)
    policy = PrunePolicy(keep=1, protect_previous=1)

    dry = prune(through, REGIONS, policy=policy, dry_run=True, now=NOW)
    assert {d.release_id: (d.action, d.reasons) for d in dry.plan.decisions} == {
        "2026.11.29": ("keep", ("current", "newest", "protection window")),
        "2026.11.22": ("keep", ("protection window",)),
        "2026.11.15": ("remove", ()),
        "2026.11.08": ("keep", ("protected in EC2",)),  # one region protected: the release stays whole
        "2026.11.01": ("remove", ()),
    }
    assert {_action(body) for _, _, body in seen.requests} <= {"DescribeImages", "DescribeSnapshots"}  # read-only

    seen.requests.clear()
    report = prune(through, REGIONS, policy=policy, now=NOW)
    ami = {key: value[0] for key, value in seeded.items()}
    removed = {ami[(r, g)] for r in ("2026.11.01", "2026.11.15") for g in REGIONS}
    old_kept = {ami[(r, g)] for r in ("2026.11.08", "2026.11.22") for g in REGIONS}

    described = seen.ec2_actions("DescribeImages")
    assert len(described) == len(REGIONS) and all(
        d["Owner.1"] == "self" and d["IncludeDeprecated"] == "true" and d["Filter.1.Name"] == "tag-key"
        and d["Filter.1.Value.1"] == "archami:release" for d in described)
    unprotect = seen.ec2_actions("DisableImageDeregistrationProtection")
    assert [u["ImageId"] for u in unprotect] == [protected_ami]  # out of the window: released, kept this time
    deprecations = seen.ec2_actions("EnableImageDeprecation")
    assert {d["ImageId"] for d in deprecations} == old_kept
    assert {d["DeprecateAt"] for d in deprecations} == {"2026-12-01T12:10:00Z"}
    assert {d["ImageId"] for d in seen.ec2_actions("DeregisterImage")} == removed
    assert len(seen.ec2_actions("DeregisterImage")) == len(removed)
    deleted = {d["SnapshotId"] for d in seen.ec2_actions("DeleteSnapshot")}
    assert deleted == {s for r in ("2026.11.01", "2026.11.15") for g in REGIONS for s in seeded[(r, g)][1]}
    assert not seen.ec2_actions("EnableImageDeregistrationProtection")  # prune never protects

    # moto implements neither call: reported as not implemented, never as done.
    outcomes = {(s.action, s.ami_id): s.outcome for s in report.run.steps} if report.run else {}
    assert {outcomes[("deprecate", a)] for a in old_kept} == {"not-implemented"}
    assert outcomes[("unprotect", protected_ami)] == "not-implemented"
    assert {outcomes[("remove", a)] for a in removed} == {"done"} and report.ok

    for region in REGIONS:  # straight to moto: what is left
        kept = {ami[(r, region)] for r in ("2026.11.08", "2026.11.22", "2026.11.29")}
        assert _images(clients, region) == kept
        kept_snapshots = {s for r in ("2026.11.08", "2026.11.22", "2026.11.29") for s in seeded[(r, region)][1]}
        assert _snapshots(clients, region) - baseline[region] == kept_snapshots  # no snapshot leaked
        for release in ("2026.11.01", "2026.11.15"):
            assert snapshots_tagged(clients.ec2(region), archami_tags("debian", VARIANT, release)) == []
        latest = clients.ssm(region).get_parameter(Name=f"/archami/debian/{VARIANT}/latest")["Parameter"]["Value"]
        assert latest == ami[("2026.11.29", region)]


def _action(body: bytes) -> str:
    form = dict(part.split("=", 1) for part in body.decode().split("&") if "=" in part)
    return form.get("Action", "")


def _records(releases: Path, seeded: Seeded) -> None:
    """Release records for the seeded AMIs (from a recorded debian release), the newest one held back."""
    template = load_records(RECORDS)[0]
    for release in RELEASES:
        variant = template.variants[0]
        regions = {g: RegionAmi(region=g, ami_id=seeded[(release, g)][0], public=True) for g in REGIONS}
        created = f"{release.replace('.', '-')}T10:00:00Z"
        record = template.model_copy(update={"release_id": release, "created_at": created,
                                             "variants": [variant.model_copy(update={"regions": regions})]})
        if release == RELEASES[-1]:
            record.verification = VerificationSummary.pending()
        save_record(releases, record)


def test_cli_dry_run_then_run_records_what_it_removed(
    tmp_path: Path, moto: MotoServer, proxy: PatchProxy, clients: Clients
) -> None:
    seeded = seed(clients)
    as_aws(proxy, set())
    releases = tmp_path / "releases"
    _records(releases, seeded)
    args = ["prune", "--regions", ",".join(REGIONS), "--keep", "1", "--protect-previous", "0", "--releases",
            str(releases), "--endpoint-url", proxy.url, "--json"]
    runner = CliRunner()
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True and plan["steps"] == [] and plan["prune_log"] is None
    by_release = {p["release_id"]: p for p in plan["plan"]}
    assert by_release["2026.11.29"]["reasons"] == ["current", "newest", "protection window"]
    assert by_release["2026.11.22"]["reasons"] == ["current"]  # the records' current (11.29 is held back)
    assert [r for r, p in by_release.items() if p["action"] == "remove"] == ["2026.11.15", "2026.11.08", "2026.11.01"]
    assert all(len(_images(clients, r)) == len(RELEASES) for r in REGIONS)  # the dry run changed nothing

    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert {s["outcome"] for s in result["steps"] if s["action"] == "remove"} == {"done"}
    log = json.loads((releases / "prune-log.json").read_text())
    assert len(log) == 1 and log[0]["removed"] == [f"debian/{VARIANT}/{r}" for r in
                                                    ("2026.11.01", "2026.11.08", "2026.11.15")]
    assert log[0]["policy"]["keep"] == 1 and log[0]["policy"]["current"] == ["2026.11.22"]
    records = {r.release_id: r for r in load_records(releases)}
    gone = records["2026.11.08"]
    for region in REGIONS:
        event = gone.removed(region, seeded[("2026.11.08", region)][0])
        assert event is not None and sorted(event.snapshots_deleted) == sorted(seeded[("2026.11.08", region)][1])
    assert not records["2026.11.22"].removed(REGIONS[0], seeded[("2026.11.22", REGIONS[0])][0])
    # The page shows a removed AMI as removed; the current release's AMIs as launch links.
    html = build_site(releases, tmp_path / "site", history=5).index.read_text()
    assert json.loads((tmp_path / "site" / "prune-log.json").read_text()) == log  # served with the page
    assert html.count('class="removed"') == 3 * len(REGIONS) and seeded[("2026.11.22", REGIONS[0])][0] in html
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout)["removed"] == []


NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def _error(code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>r</RequestID></Response>")
    return 400, {"Content-Type": "text/xml"}, body.encode()


def _ok(action: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/xml"}, (
        f'<{action}Response xmlns="{NS}"><requestId>r</requestId><return>true</return></{action}Response>').encode()


def test_refused_calls_are_failures_and_nothing_is_claimed(moto: MotoServer, clients: Clients) -> None:
    """EC2 refusing a snapshot deletion (in use) or a deregistration: the removal is failed, the snapshot is
    reported as left, a refused AMI keeps its snapshots; a deprecation EC2 accepts is done."""
    seeded = seed(clients)
    in_use = sorted(seeded[("2026.11.01", "eu-west-1")][1])[0]
    refused = seeded[("2026.11.08", "us-east-1")][0]

    def answer(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if form.get("Action") == "DeleteSnapshot" and form.get("SnapshotId") == in_use:
            return _error("InvalidSnapshot.InUse", f"The snapshot {in_use} is currently in use by ami-0")
        if form.get("Action") == "DeregisterImage" and form.get("ImageId") == refused:
            return _error("OperationNotPermitted", "deregistration protection is enabled")
        if form.get("Action") == "EnableImageDeprecation":
            return _ok("EnableImageDeprecation")
        return None

    with FaultProxy(moto.url, Faults(), intercept=answer) as proxy:
        through = Clients(AwsSettings(endpoint_url=proxy.url))
        seen = RequestRecorder()
        through.on("before-send", seen)
        report = prune(through, REGIONS, policy=PrunePolicy(keep=2, protect_previous=None), now=NOW)
    assert report.run is not None and not report.ok
    steps = {(s.action, s.ami_id): s for s in report.run.steps}
    leaky = steps[("remove", seeded[("2026.11.01", "eu-west-1")][0])]
    assert leaky.outcome == "failed" and leaky.snapshots_left[0].startswith(f"{in_use} (DeleteSnapshot failed: "
                                                                             "InvalidSnapshot.InUse")
    assert set(leaky.snapshots_deleted) == seeded[("2026.11.01", "eu-west-1")][1] - {in_use}
    kept = steps[("remove", refused)]
    assert kept.outcome == "failed" and "OperationNotPermitted" in kept.detail and not kept.snapshots_deleted
    deleted = {d["SnapshotId"] for d in seen.ec2_actions("DeleteSnapshot")}
    assert deleted.isdisjoint(seeded[("2026.11.08", "us-east-1")][1])  # its snapshots stay with the AMI
    assert refused in _images(clients, "us-east-1") and in_use in _snapshots(clients, "eu-west-1")
    old = [s for s in report.run.steps if s.action == "deprecate"]
    assert {s.ami_id for s in old} == {seeded[("2026.11.22", r)][0] for r in REGIONS}
    assert {s.outcome for s in old} == {"done"} and {s.detail for s in old} == {"2026-12-01T12:10:00Z"}
    assert len(report.run.failed) == 2
    # The next prune (a day on, straight to moto): the snapshot left behind is an orphan and goes, the refused
    # AMI is removed; no snapshot of a removed release is left anywhere.
    later = prune(clients, REGIONS, policy=PrunePolicy(keep=2, protect_previous=None), now=NOW + timedelta(days=2))
    assert later.ok and later.run is not None
    assert [(s.action, s.snapshots_deleted) for s in later.run.steps if s.action == "delete-snapshot"] == [
        ("delete-snapshot", (in_use,))]
    assert ("remove", refused) in {(s.action, s.ami_id) for s in later.run.steps}
    for region in REGIONS:
        for release in ("2026.11.01", "2026.11.08", "2026.11.15"):
            assert snapshots_tagged(clients.ec2(region), archami_tags("debian", VARIANT, release)) == []
