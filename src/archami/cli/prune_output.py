"""What `archami prune` prints: the plan (release by release, why each is kept), the calls made, and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from archami.aws.lifecycle import LifecycleRun
from archami.aws.published import PruneReport
from archami.release.policy import PrunePolicy
from archami.release.prune_log import policy_json, step_json

_STYLE = {"done": "green", "not-implemented": "yellow", "failed": "red"}


def plan_table(report: PruneReport) -> Table:
    plan = report.plan
    title = "prune plan" + (" (dry run: nothing changed)" if report.run is None else "")
    orphans = f", {len(plan.orphans)} orphan snapshot(s) to delete" if plan.orphans else ""
    table = Table(title=f"{title}: {len(plan.removed)} release(s) to remove, {len(plan.kept)} kept{orphans}")
    for column in ("variant", "release", "created", "action", "why kept", "deprecate", "regions"):
        table.add_column(column, overflow="fold")
    for d in plan.decisions:
        action = "[red]remove[/]" if d.action == "remove" else "keep"
        if d.unprotect:
            action += ", release protection"
        deprecate = plan.deprecate_at.strftime("%Y-%m-%dT%H:%MZ") if d.deprecate else ""
        table.add_row(f"{d.family}/{d.variant_id}", d.release_id, d.created.strftime("%Y-%m-%d %H:%M"), action,
                      ", ".join(d.reasons), deprecate, " ".join(f"{a.region}:{a.ami_id}" for a in d.amis))
    return table


def run_table(run: LifecycleRun) -> Table:
    table = Table(title=f"calls: {len(run.steps)} ({len(run.failed)} failed, {len(run.not_implemented)} not "
                  "implemented by the endpoint)")
    for column in ("action", "region", "AMI", "release", "outcome", "snapshots deleted", "detail"):
        table.add_column(column, overflow="fold")
    for s in run.steps:
        detail = " ".join([s.detail, *s.snapshots_left]).strip()
        table.add_row(s.action, s.region, s.ami_id, s.release_id, f"[{_STYLE[s.outcome]}]{s.outcome}[/]",
                      " ".join(s.snapshots_deleted), detail)
    return table


def prune_json(report: PruneReport, policy: PrunePolicy, log: Path | None) -> dict[str, Any]:
    plan = report.plan
    return {
        "dry_run": report.run is None,
        "policy": policy_json(policy),
        "regions": report.regions,
        "deprecate_at": plan.deprecate_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "plan": [{"family": d.family, "variant_id": d.variant_id, "release_id": d.release_id,
                  "created": d.created.strftime("%Y-%m-%dT%H:%M:%SZ"), "action": d.action, "reasons": list(d.reasons),
                  "deprecate": [a.ami_id for a in d.deprecate], "unprotect": [a.ami_id for a in d.unprotect],
                  "amis": [{"region": a.region, "ami_id": a.ami_id, "snapshot_ids": list(a.snapshot_ids),
                            "protected": a.protected} for a in d.amis]}
                 for d in plan.decisions],
        "removed": [{"region": a.region, "ami_id": a.ami_id, "release_id": a.release_id, "variant_id": a.variant_id,
                     "name": a.name} for a in plan.to_remove],
        "orphan_snapshots": [{"region": o.region, "snapshot_id": o.snapshot_id, "release_id": o.release_id,
                              "variant_id": o.variant_id} for o in plan.orphans],
        "steps": [step_json(s) for s in report.run.steps] if report.run else [],
        "prune_log": str(log) if log else None,
    }
