"""Attach a fleet report to a release: the report (and its plot) are copied beside the release record as
<release-id>.fleet.json/.png, and the record names the report in `fleet_report`."""

from __future__ import annotations

import shutil
from pathlib import Path

from archami.artifacts import write_json_atomic
from archami.fleet.report import FleetReport
from archami.release.records import load_record, save_record


def attach_to_release(record_path: Path, report: FleetReport, plot: Path | None) -> Path:
    """The path of the attached report."""
    record = load_record(record_path)
    releases = record_path.parent
    report_path = releases / f"{record.release_id}.fleet.json"
    write_json_atomic(report_path, report)
    report_path.chmod(0o644)  # published with the site, like the record
    if plot is not None and plot.exists():
        shutil.copyfile(plot, releases / f"{record.release_id}.fleet.png")
    save_record(releases, record.model_copy(update={"fleet_report": report_path.name}))
    return report_path
