"""Merging per-region measurements into ec2-pacman-mirrors lists, with the geography fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from archami.errors import ArchamiError
from archami.mirrors import REGION_COUNTRY, MeasurementReport, Mirror, RegionList, region_lists, write_region_lists
from archami.mirrors.rank import MeasurementRecord

DE1 = Mirror("https://de1.example/", "https", country_code="DE", score=1.0)
DE2 = Mirror("https://de2.example/", "https", country_code="DE", score=0.5)
US1 = Mirror("https://us1.example/", "https", country_code="US", score=2.0)
JP1 = Mirror("https://jp1.example/", "https", country_code="JP", score=3.0)
MIRRORS = [DE1, DE2, US1, JP1]


def _report(region: str, seconds: dict[Mirror, float | None], deadline: float = 10.0) -> MeasurementReport:
    records = [
        MeasurementRecord(url=m.url, ok=s is not None, seconds=s if s is not None else deadline, size=100,
                          error="" if s is not None else "timed out")
        for m, s in seconds.items()
    ]
    return MeasurementReport(region=region, path="core/os/x86_64/core.db", deadline=deadline, measurements=records)


def _by_region(lists: list[RegionList]) -> dict[str, RegionList]:
    return {entry.region: entry for entry in lists}


def test_measured_region_uses_its_own_order_and_others_fall_back_to_geography() -> None:
    reports = [_report("us-east-1", {US1: 0.2, DE1: 0.9, DE2: None, JP1: 1.5})]
    lists = _by_region(region_lists(MIRRORS, reports, ["us-east-1", "eu-central-1", "ap-northeast-1", "sa-east-1"]))
    us = lists["us-east-1"]
    assert us.source == "measured" and us.servers == [f"{m.url}$repo/os/$arch" for m in (US1, DE1, JP1)]
    eu = lists["eu-central-1"]
    assert eu.source == "geography" and eu.servers == [DE2.server, DE1.server]  # by status score
    assert "no measurements" in eu.note and "DE" in eu.note
    sa = lists["sa-east-1"]
    assert sa.source == "global" and "no mirror in BR" in sa.note
    assert sa.servers == lists["global"].servers


def test_global_list_averages_regions_and_counts_failures_as_the_deadline() -> None:
    reports = [
        _report("us-east-1", {US1: 0.2, DE1: 1.0}),
        _report("eu-central-1", {US1: None, DE1: 0.3}),  # US1 failed here: counted as 10 s
        _report("eu-central-1", {DE2: 0.1}),  # a second run in the same region is merged
    ]
    lists = _by_region(region_lists(MIRRORS, reports, ["us-east-1", "eu-central-1"]))
    assert lists["global"].servers == [DE2.server, DE1.server, US1.server]
    assert lists["eu-central-1"].servers == [DE2.server, DE1.server]
    assert "2 run(s)" in lists["eu-central-1"].note


def test_measurements_of_mirrors_that_no_longer_pass_the_filter_are_ignored() -> None:
    reports = [_report("us-east-1", {US1: 0.2, Mirror("https://gone.example/", "https"): 0.01})]
    lists = _by_region(region_lists(MIRRORS, reports, ["us-east-1"]))
    assert lists["us-east-1"].servers == [US1.server]


def test_region_whose_measurements_all_failed_says_so() -> None:
    reports = [_report("us-east-1", {US1: None}), _report("eu-central-1", {DE1: 0.5})]
    lists = _by_region(region_lists(MIRRORS, reports, ["us-east-1"]))
    assert lists["us-east-1"].source == "geography"
    assert "measurements had no answering mirror" in lists["us-east-1"].note


def test_without_any_measurements_the_global_list_follows_the_status_score() -> None:
    lists = _by_region(region_lists(MIRRORS, [], ["ap-northeast-1"], top=2))
    assert lists["global"].servers == [DE2.server, DE1.server]
    assert lists["ap-northeast-1"].servers == [JP1.server]


def test_errors_unknown_region_no_mirrors_unlabelled_report() -> None:
    with pytest.raises(ArchamiError, match="unknown AWS region"):
        region_lists(MIRRORS, [], ["mars-north-1"])
    with pytest.raises(ArchamiError, match="no mirror passed the filter"):
        region_lists([], [], ["us-east-1"])
    unlabelled = _report("us-east-1", {US1: 0.1}).model_copy(update={"region": None})
    with pytest.raises(ArchamiError, match="without a region"):
        region_lists(MIRRORS, [unlabelled], ["us-east-1"])


def test_lists_are_written_where_ec2_pacman_mirrors_reads_them(tmp_path: Path) -> None:
    lists = region_lists(MIRRORS, [_report("us-east-1", {US1: 0.1})], ["us-east-1", "eu-west-1"])
    written = write_region_lists(lists, tmp_path)
    assert sorted(p.name for p in written) == ["eu-west-1.mirrorlist", "global.mirrorlist", "us-east-1.mirrorlist"]
    text = (tmp_path / "us-east-1.mirrorlist").read_text()
    assert text.splitlines()[-1] == f"Server = {US1.server}"
    assert "ranked by measurements made in us-east-1" in text


def test_every_region_has_a_country_code() -> None:
    assert all(len(code) == 2 and code.isupper() for code in REGION_COUNTRY.values())
    assert REGION_COUNTRY["eu-west-1"] == "IE" and REGION_COUNTRY["ap-southeast-2"] == "AU"
