"""The summary, the table and the plot from a fixture report (tests/unit/fleet_data/report.json: two arms,
3 instances x 4 reboots, mixed endings, one instance lost in its last round)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from rich.console import Console

from archami.cli.fleet_cmds import render_summary
from archami.fleet.endings import ENDINGS
from archami.fleet.plot import plot_report
from archami.fleet.report import FleetReport, summarize
from archami.fleet.stats import newcombe_difference, wilson

FIXTURE = Path(__file__).parent / "fleet_data" / "report.json"


@pytest.fixture
def report() -> FleetReport:
    return summarize(FleetReport.model_validate(json.loads(FIXTURE.read_text())))


def _rounds(report: FleetReport, arm: str) -> list[dict[str, object]]:
    raw = json.loads(FIXTURE.read_text())
    return [r for i in raw["instances"] if i["arm"] == arm for r in i["rounds"] if r["ending"] is not None]


def test_summary_counts_every_round_of_each_arm(report: FleetReport) -> None:
    for arm in report.arms:
        rounds = _rounds(report, arm.label)
        summary = report.summary[arm.label]
        assert summary.rounds == len(rounds)
        for ending in ENDINGS:
            count = sum(r["ending"] == ending for r in rounds)
            assert summary.endings[ending].count == count
            assert (summary.endings[ending].low, summary.endings[ending].high) == wilson(count, len(rounds))
        failures = sum(r["ending"] in ("reset", "hang") for r in rounds)
        assert summary.failure.count == failures
        assert summary.failure.low <= summary.failure.rate <= summary.failure.high
        assert summary.no_ssh.count == sum(r["seconds_to_ssh"] is None for r in rounds)
        assert sum(s.attempted for s in summary.per_round) == len(rounds)


def test_time_to_close_counts_only_sessions_that_closed(report: FleetReport) -> None:
    for arm in report.arms:
        closed = [r["seconds_to_close"] for r in _rounds(report, arm.label) if r["ending"] in ("clean", "eof")]
        q = report.summary[arm.label].seconds_to_close
        assert q.count == len(closed)
        assert q.max == max(closed)  # type: ignore[type-var]


def test_health_and_lost_instances(report: FleetReport) -> None:
    a = report.summary["after-network"]
    assert a.health_failed.count == 1  # the degraded round in the fixture
    b = report.summary["no-drop-in"]
    assert b.no_ssh.count == 1 and b.per_round[-1].lost >= 1


def test_comparison_is_newcombe_of_the_failure_counts(report: FleetReport) -> None:
    base, other = report.summary["after-network"], report.summary["no-drop-in"]
    assert report.comparison is not None
    assert (report.comparison.baseline, report.comparison.other) == ("after-network", "no-drop-in")
    expected = newcombe_difference(other.failure.count, other.failure.total, base.failure.count, base.failure.total)
    assert (report.comparison.difference, report.comparison.low, report.comparison.high) == expected


def test_summary_survives_a_round_trip(report: FleetReport) -> None:
    again = summarize(FleetReport.model_validate_json(report.model_dump_json()))
    assert again == report


def test_table_names_both_arms_and_the_difference(report: FleetReport) -> None:
    console = Console(width=200, record=True)
    console.print(render_summary(report))
    text = console.export_text()
    assert "after-network" in text and "no-drop-in" in text and "Newcombe" in text
    failure = report.summary["no-drop-in"].failure
    assert f"{failure.count}/{failure.total}" in text


def test_plot_is_a_png(report: FleetReport, tmp_path: Path) -> None:
    out = plot_report(report, tmp_path / "fleet.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == (800, 600)


def test_single_arm_report_has_no_comparison(report: FleetReport, tmp_path: Path) -> None:
    one = report.model_copy(update={"arms": report.arms[:1]})
    one = summarize(one.model_copy(update={"instances": [i for i in one.instances if i.arm == "after-network"]}))
    assert one.comparison is None and list(one.summary) == ["after-network"]
    assert plot_report(one, tmp_path / "one.png").stat().st_size > 0


def test_attaching_to_a_release_keeps_the_records_readable(report: FleetReport, tmp_path: Path) -> None:
    from archami.fleet.attach import attach_to_release
    from archami.release.records import load_record, load_records

    source = sorted((Path(__file__).parent / "release_records" / "debian").glob("*.json"))[0]
    releases = tmp_path / "releases"
    releases.mkdir()
    record_path = releases / source.name
    record_path.write_text(source.read_text())
    plot = plot_report(report, tmp_path / "fleet.png")
    attached = attach_to_release(record_path, report, plot)
    record = load_record(record_path)
    assert record.fleet_report == attached.name == f"{record.release_id}.fleet.json"
    assert FleetReport.model_validate_json(attached.read_text()) == report
    assert (releases / f"{record.release_id}.fleet.png").read_bytes() == plot.read_bytes()
    assert [r.release_id for r in load_records(releases)] == [record.release_id]
