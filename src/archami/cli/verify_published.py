"""`archami verify --published RECORD`: every region of a published release, re-read and judged."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from archami.cli.app import console, err_console
from archami.release.records import VerificationSummary, load_record, published_records
from archami.release.verification import ReleaseVerification, VerifyPolicy, verify_release

_STYLE = {"Correct": "green", "Incorrect": "red", "Missing": "yellow", "Unreachable": "magenta", "Unverified": "cyan"}


def verification_table(result: ReleaseVerification, summary: VerificationSummary | None = None) -> Table:
    """Every check as AWS answered it; with the gate's `summary`, an accepted one says Unverified and why."""
    unverified = {(u.region, u.ami_id, u.attribute): u for u in (summary.unverified if summary else [])}
    table = Table(title=f"release {result.release_id}: post-publish verification")
    for column in ("region", "AMI", "check", "status", "expected", "actual"):
        table.add_column(column, overflow="fold")
    for report in result.reports:
        for check in report.checks:
            status: str = check.status
            actual = check.actual
            accepted = unverified.get((check.region, check.ami_id, check.name))
            if accepted is not None:
                status, actual = "Unverified", f"{actual or 'none'} ({check.status}; {accepted.reason})"
            style = _STYLE[status]
            table.add_row(check.region, check.ami_id, check.name, f"[{style}]{status}[/]", check.expected, actual)
    return table


def policy_for(definition: Path | None, *, current: bool, position: int = 0) -> VerifyPolicy:
    """What to expect: the definition's [publish] table, else `archami publish`'s defaults; `position`:
    releases newer than this one (the protection window)."""
    from archami.config.publish import PublishSettings

    if definition is None:
        return VerifyPolicy.from_settings(PublishSettings(), current=current, position=position)
    from archami.config import load_definition

    return VerifyPolicy.from_settings(load_definition(definition).definition.publish, current=current,
                                      position=position)


def verify_published_command(record_path: Path, endpoint_url: str | None, as_json: bool,
                             definition: Path | None = None) -> None:
    record = load_record(record_path)
    shown = [r.release_id for r in published_records(record_path.parent, record.definition_name)]
    position = shown.index(record.release_id) if record.release_id in shown else 0
    policy = policy_for(definition, current=position == 0, position=position)
    result = verify_release(record, policy, endpoint_url)
    if as_json:
        print(json.dumps({"release_id": result.release_id, "ok": result.ok, "checks": [
            check.__dict__ for report in result.reports for check in report.checks]}, indent=2))
    else:
        console.print(verification_table(result))
        counts: dict[str, int] = {}
        for report in result.reports:
            for check in report.checks:
                counts[check.status] = counts.get(check.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        (console if result.ok else err_console).print(f"{'all correct' if result.ok else 'NOT all correct'}: {summary}")
    if not result.ok:
        raise typer.Exit(1)
