"""The post-publish gate, without AWS: how a verification is judged (accepted attributes are Unverified,
never Correct; Incorrect and Unreachable always hold back), which records the page and stream show, and
which releases have aged out of the protection window."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archami.aws.verify import CHECKS, MOTO_UNKEPT, Check, RegionReport
from archami.config import load_definition
from archami.config.publish import PublishSettings
from archami.errors import ArchamiError
from archami.release.gate import to_release
from archami.release.lookup import latest_from_records
from archami.release.pipeline import ReleaseOptions, run_release
from archami.release.records import LifecycleEvent, VerificationSummary, load_records, published_records, save_record
from archami.release.site import build_site
from archami.release.verification import ReleaseVerification, parse_accepted, summarize

ROOT = Path(__file__).resolve().parents[2]
RECORDS = Path(__file__).parent / "release_records" / "debian"


def _verification(statuses: dict[str, str]) -> ReleaseVerification:
    checks = [Check("eu-west-1", "ami-1", name, statuses.get(name, "Correct"), f"want {name}",  # type: ignore[arg-type]
                    "" if statuses.get(name) == "Missing" else f"got {name}") for name in CHECKS]
    return ReleaseVerification("2026.12.01", [RegionReport("eu-west-1", "ami-1", checks)])


def test_all_correct_is_verified() -> None:
    summary = summarize(_verification({}), {}, "AWS")
    assert summary.status == "verified" and summary.publishable and summary.counts == {"Correct": len(CHECKS)}


def test_accepted_attributes_are_unverified_with_their_reason_and_answer() -> None:
    wrong = {"boot mode": "Incorrect", "imds": "Missing"}
    summary = summarize(_verification(wrong), parse_accepted(["moto"]), "http://127.0.0.1:5000")
    assert summary.status == "accepted-unverified" and summary.publishable
    assert summary.counts == {"Correct": len(CHECKS) - 2, "Unverified": 2}
    assert {(u.attribute, u.reason, u.answer) for u in summary.unverified} == {
        ("boot mode", MOTO_UNKEPT["boot mode"], "got boot mode"), ("imds", MOTO_UNKEPT["imds"], "")}


@pytest.mark.parametrize("status", ["Incorrect", "Missing", "Unreachable"])
def test_anything_else_holds_the_release_back_naming_region_ami_attribute_expected_actual(status: str) -> None:
    summary = summarize(_verification({"tags": status, "boot mode": "Unreachable"}), parse_accepted(["boot-mode"]),
                        "AWS")
    assert summary.status == "held-back" and not summary.publishable
    actual = "none" if status == "Missing" else "got tags"
    assert summary.problems == [
        "eu-west-1 ami-1 boot mode: expected want boot mode, actual got boot mode (Unreachable)",  # accepted or not
        f"eu-west-1 ami-1 tags: expected want tags, actual {actual} ({status})",
    ]


def test_accepted_names_and_profiles() -> None:
    assert parse_accepted(["moto"]) == MOTO_UNKEPT
    assert set(parse_accepted(["boot-mode,root_device", "ENA"])) == {"boot mode", "root device", "ena"}
    with pytest.raises(ArchamiError, match="'bootmode': not a check or endpoint profile"):
        parse_accepted(["bootmode"])


def test_unverified_attributes_are_refused_against_aws_itself(tmp_path: Path) -> None:
    loaded = load_definition(ROOT / "examples" / "debian.toml")
    options = ReleaseOptions(releases_dir=tmp_path / "r", work_dir=tmp_path / "w",
                             accept_unverified=parse_accepted(["moto"]))
    with pytest.raises(ArchamiError, match="only for an endpoint that is not AWS"):
        run_release(loaded, options)
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()  # refused before anything


def test_a_held_back_release_is_neither_on_the_page_nor_current(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    shutil.copytree(RECORDS, releases)
    newest = load_records(releases)[0]
    newest.verification = summarize(_verification({"ena": "Incorrect"}), {}, "AWS")
    save_record(releases, newest)
    assert [r.release_id for r in published_records(releases)] == [r.release_id for r in load_records(releases)][1:]
    files = build_site(releases, tmp_path / "site")
    assert files.release_ids[0] != newest.release_id and newest.release_id not in files.release_ids
    variant = newest.variants[0]
    region = sorted(variant.regions)[0]
    found = latest_from_records(releases, region, variant.variant.id)
    assert found is not None and found.release_id != newest.release_id  # `latest` does not hand it out either
    # Accepted, it is current again, and the page says what was not verified and why.
    newest.verification = summarize(_verification({"ena": "Missing"}), parse_accepted(["moto"]), "http://127.0.0.1:1")
    save_record(releases, newest)
    files = build_site(releases, tmp_path / "site")
    html = files.index.read_text()
    assert files.release_ids[0] == newest.release_id
    assert 'class="unverified" data-endpoint="http://127.0.0.1:1"' in html and MOTO_UNKEPT["ena"] in html
    assert "Verified at http://127.0.0.1:1 (not AWS); accepted as unverified: ena." in files.markdown.read_text()
    assert VerificationSummary.pending().publishable is False  # written, not yet verified: off the page


def _protected(record_id: str, releases: Path) -> None:
    record = next(r for r in load_records(releases) if r.release_id == record_id)
    for v in record.variants:
        for region, ami in v.regions.items():
            record.lifecycle.append(LifecycleEvent(at="2026-11-25T00:00:00Z", action="protect", region=region,
                                                   ami_id=ami.ami_id, variant_id=v.variant.id, outcome="done"))
    save_record(releases, record)


def test_only_recorded_protection_out_of_the_window_is_released(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    shutil.copytree(RECORDS, releases)
    history = load_records(releases)  # three releases, newest first; a new one is about to become current
    for record in history:
        _protected(record.release_id, releases)
    history = load_records(releases)
    aged = to_release(history, PublishSettings(protect_previous=1))
    assert {r.release_id for r, _ in aged} == {history[1].release_id, history[2].release_id}
    assert to_release(history, PublishSettings(protect_previous=3)) == []
    assert to_release(history, PublishSettings(deregistration_protection=False)) != []  # turned off: all released
    history[2].lifecycle.append(history[2].lifecycle[0].model_copy(update={"action": "unprotect"}))
    released_once = {a.ami_id for _, a in to_release(history, PublishSettings(protect_previous=1))}
    assert history[2].lifecycle[0].ami_id not in released_once  # already released: not asked again
