"""What `archami prune` did, kept with the release records: each call in the record of the release it concerns
(`lifecycle`: the page shows a removed AMI as removed) and each run in `prune-log.json` beside them (policy,
plan and calls, newest last), which the site publishes as it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archami.release.policy import PrunePolicy
from archami.release.records import LifecycleEvent, load_records, published_records, record_path, save_record
from archami.release.state import release_lock

if TYPE_CHECKING:
    from archami.aws.lifecycle import StepResult
    from archami.aws.published import PruneReport

PRUNE_LOG_NAME = "prune-log.json"  # release/site.py copies it into the site


def current_releases(releases_dir: Path, family: str | None) -> set[str]:
    """The release each family's page shows as current: prune never removes it, whatever AWS lists newer."""
    newest: dict[str, str] = {}
    for record in published_records(releases_dir, family):  # newest first
        newest.setdefault(record.definition_name, record.release_id)
    return set(newest.values())


def step_json(step: StepResult) -> dict[str, Any]:
    return {"action": step.action, "region": step.region, "ami_id": step.ami_id, "release_id": step.release_id,
            "variant_id": step.variant_id, "outcome": step.outcome, "detail": step.detail,
            "snapshots_deleted": list(step.snapshots_deleted), "snapshots_left": list(step.snapshots_left)}


def policy_json(policy: PrunePolicy) -> dict[str, Any]:
    return {"keep": policy.keep, "keep_since": policy.keep_since.isoformat() if policy.keep_since else None,
            "protect_previous": policy.protect_previous, "current": sorted(policy.current)}


def record_prune(releases_dir: Path, report: PruneReport, policy: PrunePolicy) -> Path:
    """Write the run's calls into the records they concern and append the run to prune-log.json (the caller
    holds the directory's release lock: see `locked`)."""
    assert report.run is not None
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = {(r.definition_name, r.release_id): r for r in load_records(releases_dir)}
    families = {(a.release_id, a.ami_id): a.family for d in report.plan.decisions for a in d.amis}
    touched = set()
    for step in report.run.steps:
        key = (families.get((step.release_id, step.ami_id), ""), step.release_id)
        record = records.get(key)
        if record is None or not record_path(releases_dir, step.release_id).is_file():
            continue  # an AMI of a release these records do not hold (another directory's, or made by hand)
        record.lifecycle.append(LifecycleEvent(
            at=at, action=step.action, region=step.region, ami_id=step.ami_id, variant_id=step.variant_id,
            outcome=step.outcome, detail=step.detail, snapshots_deleted=list(step.snapshots_deleted),
            snapshots_left=list(step.snapshots_left)))
        touched.add(key)
    for key in sorted(touched):
        save_record(releases_dir, records[key])
    path = releases_dir / PRUNE_LOG_NAME
    runs: list[Any] = json.loads(path.read_text()) if path.is_file() else []
    runs.append({
        "at": at, "policy": policy_json(policy), "regions": report.regions,
        "removed": sorted({f"{d.family}/{d.variant_id}/{d.release_id}" for d in report.plan.removed}),
        "steps": [step_json(s) for s in report.run.steps],
    })
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(runs, indent=2) + "\n")
    tmp.chmod(0o644)  # published with the site, like the records
    tmp.replace(path)
    return path


@contextmanager
def locked(releases_dir: Path | None) -> Iterator[None]:
    """The records directory's release lock (no `archami release` writes records meanwhile), if there is one."""
    if releases_dir is None:
        yield
        return
    with release_lock(releases_dir):
        yield
