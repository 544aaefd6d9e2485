"""After a release is published: protect it, re-read every region, and let it onto the page and into the
stream only when AWS holds what was meant.

1. Deregistration protection on every AMI of the new release (`[publish] deregistration_protection`).
2. Post-publish verification (aws/verify.py): every check Correct, or Unverified for an attribute the
   publisher accepted for a non-AWS endpoint (`--accept-unverified`, e.g. the `moto` profile); anything
   Incorrect, Missing or Unreachable holds the release back. The verdict is kept in the record
   (`verification`), so `archami site` and `archami stream` leave a held-back release out.
3. Only once the release is publishable: the release that has aged out of the protection window (the
   current and `protect_previous` before it stay protected) has its protection released.

Every protection call is recorded in the record of the release it concerns (`lifecycle`), with what the
endpoint said: done, not-implemented or failed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from archami.aws.clients import AwsSettings, Clients
from archami.aws.lifecycle import StepResult, run_steps, set_protection
from archami.config.publish import PublishSettings
from archami.release.policy import PublishedAmi
from archami.release.records import LifecycleEvent, ReleaseRecord, load_records, save_record
from archami.release.verification import ReleaseVerification, VerifyPolicy, summarize, verify_release

Log = Callable[[str], None]


@dataclass(frozen=True)
class GateResult:
    verification: ReleaseVerification
    record: ReleaseRecord  # with its verification summary and protection events

    @property
    def publishable(self) -> bool:
        return self.record.publishable


def _amis(record: ReleaseRecord) -> list[PublishedAmi]:
    created = datetime.fromisoformat(record.created_at.replace("Z", "+00:00"))
    return [PublishedAmi(region=region, family=record.definition_name, variant_id=v.variant.id,
                         release_id=record.release_id, ami_id=ami.ami_id, created=created)
            for v in record.ordered_variants() for region, ami in sorted(v.regions.items())
            if record.removed(region, ami.ami_id) is None]


def to_release(history: list[ReleaseRecord], settings: PublishSettings) -> list[tuple[ReleaseRecord, PublishedAmi]]:
    """The AMIs of older releases (`history`: newest first, the new release not in it) that have aged out of
    the window and are recorded as protected. A held-back release never becomes current: it is out. Pure."""
    out = []
    position = 0
    for record in history:
        if record.publishable:
            position += 1
            if settings.protects(position):
                continue
        out += [(record, ami) for ami in _amis(record) if record.protection(ami.region, ami.ami_id) == "enabled"]
    return out


def _event(step: StepResult) -> LifecycleEvent:
    return LifecycleEvent(at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), action=step.action,
                          region=step.region, ami_id=step.ami_id, variant_id=step.variant_id, outcome=step.outcome,
                          detail=step.detail)


def _protect(clients: Clients, record: ReleaseRecord, log: Log) -> None:
    steps = run_steps([functools.partial(set_protection, clients, ami, True) for ami in _amis(record)
                       if record.protection(ami.region, ami.ami_id) != "enabled"]).steps
    record.lifecycle += [_event(s) for s in steps]
    for step in steps:
        if step.outcome != "done":
            log(f"{step.region}: deregistration protection of {step.ami_id}: {step.outcome}: {step.detail}")


def gate_release(
    record: ReleaseRecord, settings: PublishSettings, releases_dir: Path, *, endpoint_url: str | None,
    accepted: Mapping[str, str], clients: Clients | None = None, log: Log = lambda _: None,
) -> GateResult:
    """Protect, verify and judge the new release (saving its record), then age out the protection of the
    release that left the window. Raises nothing for a held-back release: see `result.publishable`."""
    clients = clients or Clients(AwsSettings(endpoint_url=endpoint_url, max_attempts=3))
    if settings.protects(0):
        _protect(clients, record, log)
    verification = verify_release(record, VerifyPolicy.from_settings(settings, current=True), clients=clients)
    record.verification = summarize(verification, accepted, endpoint_url or "AWS")
    save_record(releases_dir, record)
    if not record.publishable:
        return GateResult(verification, record)
    history = [r for r in load_records(releases_dir, record.definition_name) if r.release_id != record.release_id]
    aged = to_release(history, settings)
    steps = run_steps([functools.partial(set_protection, clients, ami, False) for _, ami in aged]).steps
    for (older, _), step in zip(aged, steps, strict=True):
        older.lifecycle.append(_event(step))
        log(f"{step.region}: protection of {step.ami_id} (release {older.release_id}) released: {step.outcome}")
    for older in {id(r): r for r, _ in aged}.values():
        save_record(releases_dir, older)
    return GateResult(verification, record)
