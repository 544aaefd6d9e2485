"""The post-publish gate of `archami release` (release/gate.py) against moto in server mode: a small build
published to two regions, then protected, verified and judged.

- moto's own answers hold the release back, each problem named (region, AMI, attribute, expected, actual);
- accepted as unverified (the `moto` profile) it passes, the record and the page say what was not verified;
- answered as AWS answers (a proxy completes moto's answers), every check is Correct with nothing accepted;
- the exact protection requests: EnableImageDeregistrationProtection (no cooldown) for the new release, and
  DisableImageDeregistrationProtection for the release that aged out of the window, only once the new one
  passed; moto implements neither, and the records say so instead of claiming protection.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_helpers import RequestRecorder
from moto_server import MotoServer
from patch_proxy import PatchProxy, each_image, set_field
from test_aws_verify import REGIONS, SETTINGS, _as_aws_answers, _publish

from archami.aws.clients import AwsSettings, Clients
from archami.aws.verify import CHECKS, MOTO_UNKEPT
from archami.release.gate import gate_release
from archami.release.records import LifecycleEvent, ReleaseRecord, load_records, published_records, save_record
from archami.release.site import build_site
from archami.release.verification import parse_accepted

pytestmark = pytest.mark.integration
PREVIOUS = "2026.11.24"


@pytest.fixture(scope="module")
def published(moto_session: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> ReleaseRecord:
    moto_session.reset()
    return _publish(tmp_path_factory.mktemp("gate-build"), moto_session)


@pytest.fixture(scope="module")
def previous_amis(moto_session: MotoServer, published: ReleaseRecord) -> dict[str, str]:
    """Last week's AMIs (registered directly: only their ids matter here)."""
    clients = Clients(AwsSettings(endpoint_url=moto_session.url))
    return {region: clients.ec2(region).register_image(
        Name=f"debian-previous-{PREVIOUS}", Architecture="x86_64", RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 1}}])["ImageId"] for region in REGIONS}


@pytest.fixture
def releases(tmp_path: Path, published: ReleaseRecord, previous_amis: dict[str, str]) -> Path:
    """The new release's record (not yet verified) and last week's, recorded as protected."""
    directory = tmp_path / "releases"
    save_record(directory, published)
    previous = published.model_copy(deep=True, update={"release_id": PREVIOUS, "created_at": "2026-11-24T10:00:00Z"})
    for v in previous.variants:
        for region, ami in v.regions.items():
            ami.ami_id = previous_amis[region]
            previous.lifecycle.append(LifecycleEvent(at="2026-11-24T10:05:00Z", action="protect", region=region,
                                                     ami_id=ami.ami_id, variant_id=v.variant.id, outcome="done"))
    save_record(directory, previous)
    return directory


@pytest.fixture
def recorded(moto_session: MotoServer) -> Iterator[tuple[Clients, RequestRecorder, PatchProxy]]:
    proxy = PatchProxy(moto_session.url)
    recorder = RequestRecorder()
    clients = Clients(AwsSettings(endpoint_url=proxy.url, max_attempts=2))
    clients.on("before-send", recorder)
    yield clients, recorder, proxy
    proxy.stop()


def _amis(record: ReleaseRecord) -> list[str]:
    return [ami.ami_id for v in record.ordered_variants() for _, ami in sorted(v.regions.items())]


def test_moto_answers_hold_the_release_back_naming_each_problem(
    releases: Path, published: ReleaseRecord, recorded: tuple[Clients, RequestRecorder, PatchProxy]
) -> None:
    clients, recorder, _ = recorded
    settings = SETTINGS.model_copy(update={"protect_previous": 0})
    result = gate_release(load_records(releases)[0], settings, releases, endpoint_url="http://emulator",
                          accepted={}, clients=clients)
    assert not result.publishable
    summary = result.record.verification
    assert summary is not None and summary.status == "held-back" and summary.endpoint == "http://emulator"
    ami = published.variants[0].regions["eu-west-1"].ami_id
    assert f"eu-west-1 {ami} architecture: expected x86_64, actual none (Missing)" in summary.problems
    assert f"eu-west-1 {ami} boot mode: expected uefi-preferred, actual uefi (Incorrect)" in summary.problems
    assert len(summary.problems) == len(MOTO_UNKEPT) * len(REGIONS)
    enabled = recorder.ec2_actions("EnableImageDeregistrationProtection")
    assert sorted((e["ImageId"], e["WithCooldown"]) for e in enabled) == sorted(
        (a, "false") for a in _amis(published))
    assert {e.outcome for e in result.record.lifecycle} == {"not-implemented"}  # moto: never claimed protected
    assert result.record.protection("eu-west-1", ami) is None
    assert not recorder.ec2_actions("DisableImageDeregistrationProtection")  # held back: nothing aged out
    assert [r.release_id for r in published_records(releases)] == [PREVIOUS]  # the page keeps last week's


def test_accepted_unverified_passes_and_ages_out_the_previous_release(
    releases: Path, published: ReleaseRecord, recorded: tuple[Clients, RequestRecorder, PatchProxy], tmp_path: Path
) -> None:
    clients, recorder, _ = recorded
    settings = SETTINGS.model_copy(update={"protect_previous": 0})
    result = gate_release(load_records(releases)[0], settings, releases, endpoint_url="http://emulator",
                          accepted=parse_accepted(["moto"]), clients=clients)
    assert result.publishable
    summary = result.record.verification
    assert summary is not None and summary.status == "accepted-unverified"
    assert summary.counts == {"Correct": (len(CHECKS) - len(MOTO_UNKEPT)) * len(REGIONS),
                              "Unverified": len(MOTO_UNKEPT) * len(REGIONS)}
    assert summary.unverified_attributes == sorted(MOTO_UNKEPT)
    previous = next(r for r in load_records(releases) if r.release_id == PREVIOUS)
    disabled = recorder.ec2_actions("DisableImageDeregistrationProtection")
    assert sorted(d["ImageId"] for d in disabled) == sorted(_amis(previous))
    assert set(_amis(previous)).isdisjoint(_amis(published))
    unprotect = [e for e in previous.lifecycle if e.action == "unprotect"]
    assert {e.outcome for e in unprotect} == {"not-implemented"} and len(unprotect) == len(REGIONS)
    assert previous.protection("eu-west-1", _amis(previous)[0]) == "enabled"  # still: the next run asks again
    html = build_site(releases, tmp_path / "site").index.read_text()
    assert 'class="unverified"' in html and MOTO_UNKEPT["boot mode"] in html


def test_answers_as_aws_gives_them_are_all_correct(
    releases: Path, published: ReleaseRecord, recorded: tuple[Clients, RequestRecorder, PatchProxy], tmp_path: Path
) -> None:
    clients, _, proxy = recorded
    proxy.ec2_patches["DescribeImages"] = [each_image(_as_aws_answers(published))]
    result = gate_release(load_records(releases)[0], SETTINGS, releases, endpoint_url=None, accepted={},
                          clients=clients)
    summary = result.record.verification
    assert summary is not None and summary.status == "verified" and summary.endpoint == "AWS"
    assert summary.counts == {"Correct": len(CHECKS) * len(REGIONS)}
    # With protection off in [publish], an enabled protection is Incorrect: the check really reads it.
    off = SETTINGS.model_copy(update={"deregistration_protection": False})
    shutil.rmtree(tmp_path / "releases")
    save_record(tmp_path / "releases", published)
    held = gate_release(published.model_copy(deep=True), off, tmp_path / "releases", endpoint_url=None, accepted={},
                        clients=clients)
    assert held.record.verification is not None
    assert [p.split(": ")[0].split()[-2:] for p in held.record.verification.problems] == [
        ["deregistration", "protection"]] * len(REGIONS)
    proxy.ec2_patches["DescribeImages"].append(
        each_image(lambda i: set_field(i, "deregistrationProtection", "disabled")))
    assert gate_release(published.model_copy(deep=True), off, tmp_path / "releases", endpoint_url=None, accepted={},
                        clients=clients).publishable
