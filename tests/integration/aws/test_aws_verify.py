"""Post-publish verification against moto in server mode: a release published by archami to two regions is
re-read through a proxy that can rewrite moto's answers.

- moto's own answers prove the checks moto implements (state, launch and snapshot permissions, tags, SSM)
  and show what it drops or fills with its own defaults (architecture, virtualization, boot mode, ENA, IMDS,
  root device, deprecation, deregistration protection): those are Missing or Incorrect, never correct;
- answers completed as AWS gives them make every check Correct;
- each attribute made wrong in turn is reported Incorrect, and only that one;
- the exact read-only requests are asserted; a gone AMI is Missing, a dead endpoint Unreachable.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_helpers import REPO, RequestRecorder, make_build
from moto_server import MotoServer, free_port
from patch_proxy import PatchProxy, add, child, each_image, set_field
from typer.testing import CliRunner

from archami.artifacts import MANIFEST_NAME, Manifest, read_json
from archami.aws.clients import AwsSettings, Clients
from archami.aws.publish import publish
from archami.aws.verify import CHECKS
from archami.cli import app
from archami.config.load import load_definition, parse_definition
from archami.release.records import BootTestResult, ReleaseRecord, VariantRelease, save_record
from archami.release.stream import stream_name
from archami.release.verification import VerifyPolicy, verify_release

pytestmark = pytest.mark.integration
REGIONS = ["us-east-1", "eu-west-1"]
RELEASE = "2026.12.01"
# Observed: moto answers DescribeImages without these (or, boot mode and root device, with its own defaults:
# "uefi" and a /dev/sda1 "standard" root), whatever RegisterImage said.
MOTO_WRONG = {"architecture", "virtualization", "boot mode", "ena", "imds", "root device", "deprecation",
              "deregistration protection"}


# Public, shared with one more account, one extra tag: what the launch permission and tags checks expect.
PUBLISH_TABLE = '[publish]\npublic = true\nshare = { accounts = ["111122223333"] }\ntags = { team = "images" }\n'
SETTINGS = parse_definition((REPO / "examples/debian.toml").read_text() + PUBLISH_TABLE).publish


def _publish(out: Path, moto: MotoServer) -> ReleaseRecord:
    """A real `publish` of a small build to two regions of the emulator, as a release record."""
    loaded = load_definition(REPO / "examples/debian.toml")
    build = make_build(out, loaded.variants[0])  # the example's stable release
    settings = SETTINGS.model_copy(update={"regions": REGIONS})
    published = publish(build, settings, endpoint_url=moto.url, release_id=RELEASE,
                        clients=Clients(AwsSettings(endpoint_url=moto.url)), poll=0.05)
    manifest = read_json(build / MANIFEST_NAME, Manifest)
    variant = VariantRelease.assemble(manifest, BootTestResult(status="skipped"), published, manifest.variant)
    return ReleaseRecord(release_id=RELEASE, definition_name=manifest.definition_name, distro="debian",
                         definition_sha256="0" * 64, created_at="2026-12-01T00:00:00Z", archami_version="0",
                         variants=[variant])


@pytest.fixture(scope="module")
def release(moto_session: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> ReleaseRecord:
    """Published once for the read-only tests of this module (the emulator is reset first)."""
    moto_session.reset()
    return _publish(tmp_path_factory.mktemp("verify-build"), moto_session)


@pytest.fixture(scope="module")
def patching(moto_session: MotoServer) -> Iterator[tuple[PatchProxy, Clients, RequestRecorder]]:
    """One proxy and one set of clients for the module (making boto3 clients is the slow part)."""
    server = PatchProxy(moto_session.url)
    recorder = RequestRecorder()
    clients = Clients(AwsSettings(endpoint_url=server.url, max_attempts=2))
    clients.on("before-send", recorder)
    yield server, clients, recorder
    server.stop()


@pytest.fixture
def proxy(patching: tuple[PatchProxy, Clients, RequestRecorder]) -> PatchProxy:
    server, _, recorder = patching
    server.clear()
    recorder.requests.clear()
    return server


@pytest.fixture
def proxy_clients(patching: tuple[PatchProxy, Clients, RequestRecorder]) -> Clients:
    return patching[1]


@pytest.fixture
def requests_seen(patching: tuple[PatchProxy, Clients, RequestRecorder]) -> RequestRecorder:
    return patching[2]


def _verify(clients: Clients, record: ReleaseRecord, policy: VerifyPolicy | None = None) -> dict[
        tuple[str, str], tuple[str, str]]:
    result = verify_release(record, policy or VerifyPolicy.from_settings(SETTINGS, current=True), clients=clients)
    return {(c.region, c.name): (c.status, c.actual) for r in result.reports for c in r.checks}


def _as_aws_answers(release: ReleaseRecord) -> Callable[[ET.Element], None]:
    """DescribeImages completed with what AWS returns and moto drops for the images archami registered:
    its attributes (uefi-preferred, ENA, IMDSv2, the deprecation time), and the root device mapping with the
    snapshot RegisterImage named (moto makes a snapshot of its own and maps it as /dev/sda1)."""
    snapshots = {ami.ami_id: ami.snapshot_id for v in release.variants for ami in v.regions.values()}

    def complete(item: ET.Element) -> None:
        _complete(item, snapshots[child(item, "imageId").text or ""])  # type: ignore[union-attr]
    return complete


def _complete(item: ET.Element, snapshot: str | None) -> None:
    created = datetime.fromisoformat((child(item, "creationDate").text or "").replace("Z", "+00:00"))  # type: ignore[union-attr]
    set_field(item, "architecture", "x86_64")
    set_field(item, "virtualizationType", "hvm")
    set_field(item, "rootDeviceType", "ebs")
    set_field(item, "rootDeviceName", "/dev/xvda")
    for mapping in child(item, "blockDeviceMapping") or []:
        ebs = child(mapping, "ebs")
        if ebs is not None:
            set_field(mapping, "deviceName", "/dev/xvda")
            set_field(ebs, "snapshotId", snapshot)
    set_field(item, "bootMode", "uefi-preferred")
    set_field(item, "enaSupport", "true")
    set_field(item, "imdsSupport", "v2.0")
    set_field(item, "deprecationTime", (created + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    set_field(item, "deregistrationProtection", "enabled")  # the current release is protected by default


def test_moto_answers_prove_what_moto_implements(
    proxy: PatchProxy, proxy_clients: Clients, release: ReleaseRecord
) -> None:
    statuses = _verify(proxy_clients, release)
    for region in REGIONS:
        for name in CHECKS:
            status, actual = statuses[(region, name)]
            if name in MOTO_WRONG:
                assert status in ("Missing", "Incorrect"), (region, name, status, actual)  # never taken as correct
            else:
                assert status == "Correct", (region, name, status, actual)


def test_complete_answers_are_all_correct_and_the_requests_are_read_only(
    proxy: PatchProxy, proxy_clients: Clients, requests_seen: RequestRecorder, release: ReleaseRecord
) -> None:
    proxy.ec2_patches["DescribeImages"] = [each_image(_as_aws_answers(release))]
    recorder = requests_seen
    statuses = _verify(proxy_clients, release)
    assert {status for status, _ in statuses.values()} == {"Correct"}
    assert len(statuses) == len(REGIONS) * len(CHECKS)

    variant = release.variants[0]
    order = sorted(REGIONS)  # regions are verified in name order
    described = recorder.ec2_actions("DescribeImages")
    assert [d["ImageId.1"] for d in described] == [variant.regions[r].ami_id for r in order]
    assert all(set(d) == {"Action", "Version", "ImageId.1"} for d in described)
    attributes = recorder.ec2_actions("DescribeImageAttribute")
    assert [(a["ImageId"], a["Attribute"]) for a in attributes] == [
        (variant.regions[r].ami_id, "launchPermission") for r in order]
    snapshots = recorder.ec2_actions("DescribeSnapshotAttribute")
    assert [s["Attribute"] for s in snapshots] == ["createVolumePermission"] * len(REGIONS)
    assert [s["SnapshotId"] for s in snapshots] == [variant.regions[r].snapshot_id for r in order]
    ssm_bodies = [body for _, url, body in recorder.requests if b"\"Name\"" in body]
    expected_name = f"/archami/debian/{variant.variant.id}/latest"
    assert ssm_bodies == [json.dumps({"Name": expected_name}).encode()] * len(REGIONS)
    actions = {a for _, _, body in recorder.requests for a in [_action(body)] if a}
    assert actions == {"DescribeImages", "DescribeImageAttribute", "DescribeSnapshotAttribute"}  # nothing changed


def _action(body: bytes) -> str | None:
    for part in body.split(b"&"):
        if part.startswith(b"Action="):
            return part[7:].decode()
    return None


def _root_elements(name: str, edit: Callable[[ET.Element], None]) -> Callable[[ET.Element, dict[str, str]], None]:
    def apply(root: ET.Element, form: dict[str, str]) -> None:
        element = child(root, name)
        assert element is not None, ET.tostring(root)
        edit(element)
    return apply


def _launch_private(element: ET.Element) -> None:
    for item in list(element):
        element.remove(item)


def _snapshot_public(element: ET.Element) -> None:
    add(add(element, "item"), "group").text = "all"


def _deprecated_too_soon(item: ET.Element) -> None:
    created = datetime.fromisoformat((child(item, "creationDate").text or "").replace("Z", "+00:00"))  # type: ignore[union-attr]
    set_field(item, "deprecationTime", (created + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))


def _wrong_release_tag(item: ET.Element) -> None:
    for tag in child(item, "tagSet") or []:
        if (child(tag, "key") is not None) and child(tag, "key").text == "archami:release":  # type: ignore[union-attr]
            child(tag, "value").text = "2020.01.01"  # type: ignore[union-attr]


def _root_device_elsewhere(item: ET.Element) -> None:
    set_field(item, "rootDeviceName", "/dev/sda1")


def _other_ami(document: dict[str, Any]) -> None:
    document["Parameter"]["Value"] = "ami-0123456789abcdef0"


WRONG: dict[str, tuple[str, Any]] = {
    "state": ("DescribeImages", each_image(lambda i: set_field(i, "imageState", "pending"))),
    "architecture": ("DescribeImages", each_image(lambda i: set_field(i, "architecture", "arm64"))),
    "virtualization": ("DescribeImages", each_image(lambda i: set_field(i, "virtualizationType", "paravirtual"))),
    "boot mode": ("DescribeImages", each_image(lambda i: set_field(i, "bootMode", "legacy-bios"))),
    "ena": ("DescribeImages", each_image(lambda i: set_field(i, "enaSupport", "false"))),
    "imds": ("DescribeImages", each_image(lambda i: set_field(i, "imdsSupport", "v1.0"))),
    "root device": ("DescribeImages", each_image(_root_device_elsewhere)),
    "deprecation": ("DescribeImages", each_image(_deprecated_too_soon)),
    "deregistration protection": ("DescribeImages",
                                  each_image(lambda i: set_field(i, "deregistrationProtection", "disabled"))),
    "tags": ("DescribeImages", each_image(_wrong_release_tag)),
    "launch permission": ("DescribeImageAttribute", _root_elements("launchPermission", _launch_private)),
    "snapshot permission": ("DescribeSnapshotAttribute", _root_elements("createVolumePermission", _snapshot_public)),
    "ssm parameter": ("GetParameter", _other_ami),
}


@pytest.mark.parametrize("attribute", CHECKS)
def test_each_wrong_attribute_is_reported_incorrect(
    proxy: PatchProxy, proxy_clients: Clients, release: ReleaseRecord, attribute: str
) -> None:
    action, patch = WRONG[attribute]
    proxy.ec2_patches["DescribeImages"] = [each_image(_as_aws_answers(release))]
    if action == "GetParameter":
        proxy.ssm_patches["GetParameter"] = [patch]
    else:
        proxy.ec2_patches.setdefault(action, []).append(patch)
    statuses = _verify(proxy_clients, release)
    for region in REGIONS:
        for name in CHECKS:
            status, actual = statuses[(region, name)]
            assert status == ("Incorrect" if name == attribute else "Correct"), (region, name, status, actual)


def test_deprecation_is_really_checked(proxy: PatchProxy, proxy_clients: Clients, release: ReleaseRecord) -> None:
    """Unset is Missing when a deprecation is wanted, Correct when none is; a set one when none is wanted is
    Incorrect (the wrong-day case is in the parametrized test above)."""
    assert _verify(proxy_clients, release)[("us-east-1", "deprecation")][0] == "Missing"
    never = dataclasses.replace(VerifyPolicy.from_settings(SETTINGS, current=True), deprecate_after_days=None)
    assert _verify(proxy_clients, release, never)[("us-east-1", "deprecation")][0] == "Correct"
    proxy.ec2_patches["DescribeImages"] = [each_image(_as_aws_answers(release))]
    assert _verify(proxy_clients, release, never)[("us-east-1", "deprecation")][0] == "Incorrect"


def test_the_stream_is_written_only_when_every_check_is_correct(
    proxy: PatchProxy, release: ReleaseRecord, tmp_path: Path
) -> None:
    releases = tmp_path / "releases"
    save_record(releases, release)
    definition = tmp_path / "debian.toml"
    definition.write_text((REPO / "examples/debian.toml").read_text() + PUBLISH_TABLE)
    command = ["stream", "--releases", str(releases), "--out", str(tmp_path / "site"), "--definition",
               str(definition), "--gnupg-home", str(tmp_path / "gnupg"), "--endpoint-url", proxy.url]
    refused = CliRunner().invoke(app, command)
    assert refused.exit_code != 0 and "16 check(s) not Correct" in str(refused.exception)  # 8 per region
    assert not (tmp_path / "site" / "streams").exists()
    accepted = CliRunner().invoke(app, [*command, "--accept-unverified", "moto", "--json"])  # named, explicitly
    assert accepted.exit_code == 0, accepted.output
    proxy.ec2_patches["DescribeImages"] = [each_image(_as_aws_answers(release))]
    written = CliRunner().invoke(app, [*command, "--json"])
    assert written.exit_code == 0, written.output
    assert (tmp_path / "site/streams" / f"{stream_name(release.variants[0])}.json.sig").is_file()


def test_gone_ami_is_missing_and_dead_endpoint_unreachable(
    proxy: PatchProxy, proxy_clients: Clients, release: ReleaseRecord, moto_session: MotoServer
) -> None:
    """Last in the module: it deregisters one of the release's images."""
    clients = Clients(AwsSettings(endpoint_url=moto_session.url))
    gone = release.variants[0].regions["eu-west-1"].ami_id
    clients.ec2("eu-west-1").deregister_image(ImageId=gone)
    statuses = _verify(proxy_clients, release)
    assert {statuses[("eu-west-1", name)][0] for name in CHECKS} == {"Missing"}
    assert statuses[("us-east-1", "state")][0] == "Correct"

    dead = Clients(AwsSettings(endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1, connect_timeout=1))
    result = verify_release(release, VerifyPolicy(), clients=dead)
    assert {c.status for r in result.reports for c in r.checks} == {"Unreachable"}
    assert not result.ok
