"""Carrying out the lifecycle of published releases in EC2: list them, deregistration protection on and off,
deprecation, and removal (deregister + delete every snapshot). The decisions are release/policy.py's.

Every call that an endpoint may not implement (EnableImageDeregistrationProtection and its Disable twin,
EnableImageDeprecation: moto 5 has none of them) is reported per AMI as "not-implemented", never as done.
A removal deletes the snapshots behind the AMI and every snapshot tagged with its release; one that cannot
be deleted is reported as left behind (with EC2's reason), and the removal counts as failed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from archami.aws.clients import Clients
from archami.aws.distribute import ssm_parameter_name
from archami.aws.errors import NotImplementedByEndpoint, aws_error_message, call_or_not_implemented
from archami.aws.images import (
    NAME_TAG,
    RELEASE_TAG,
    VARIANT_TAG,
    archami_tags,
    image_snapshot_ids,
    snapshots_tagged,
    tags_of,
)
from archami.release.policy import PublishedAmi, TaggedSnapshot

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

Outcome = Literal["done", "not-implemented", "failed"]
Action = Literal["protect", "unprotect", "deprecate", "remove", "delete-snapshot"]
_GONE = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable")


@dataclass(frozen=True)
class StepResult:
    """One lifecycle call on one AMI: done, not implemented by the endpoint, or failed (with EC2's reason)."""

    action: Action
    region: str
    ami_id: str
    release_id: str
    variant_id: str
    outcome: Outcome
    detail: str = ""
    snapshots_deleted: tuple[str, ...] = ()
    snapshots_left: tuple[str, ...] = ()  # could not be deleted: "snap-… (reason)"


def _parse_time(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _protected(image: Any) -> bool | None:
    state = image.get("DeregistrationProtection")
    if state is None:
        return None
    return not str(state).startswith("disabled")


def published_amis(clients: Clients, regions: list[str], family: str | None = None) -> list[PublishedAmi]:
    """Every archami AMI in these regions (optionally of one family), with what EC2 says of its lifecycle."""
    filters: list[Any] = [{"Name": "tag-key", "Values": [RELEASE_TAG]}]
    if family:
        filters.append({"Name": f"tag:{NAME_TAG}", "Values": [family]})

    def scan(region: str) -> list[PublishedAmi]:
        ec2 = clients.ec2(region)
        # IncludeDeprecated: EC2 hides deprecated AMIs from DescribeImages otherwise (owners see them, but say so).
        images = ec2.describe_images(Owners=["self"], Filters=filters, IncludeDeprecated=True)["Images"]
        found = []
        for image in images:
            tags = tags_of(image)
            if RELEASE_TAG not in tags or VARIANT_TAG not in tags or image.get("State") == "deregistered":
                continue
            found.append(PublishedAmi(
                region=region, family=tags.get(NAME_TAG, ""), variant_id=tags[VARIANT_TAG],
                release_id=tags[RELEASE_TAG], ami_id=image["ImageId"],
                created=_parse_time(image.get("CreationDate")) or datetime(1970, 1, 1, tzinfo=UTC),
                snapshot_ids=tuple(image_snapshot_ids(image)), protected=_protected(image),
                deprecation=_parse_time(image.get("DeprecationTime")), name=str(image.get("Name", "")),
            ))
        return found

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(regions)))) as pool:
        return [ami for amis in pool.map(scan, regions) for ami in amis]


def tagged_snapshots(clients: Clients, regions: list[str], family: str | None = None) -> list[TaggedSnapshot]:
    """Every snapshot with archami's release tags in these regions (optionally of one family)."""
    filters: list[Any] = [{"Name": "tag-key", "Values": [RELEASE_TAG]}]
    if family:
        filters.append({"Name": f"tag:{NAME_TAG}", "Values": [family]})

    def scan(region: str) -> list[TaggedSnapshot]:
        found = []
        for snapshot in snapshots_of(clients.ec2(region), filters):
            tags = tags_of(snapshot)
            if RELEASE_TAG in tags and VARIANT_TAG in tags:
                found.append(TaggedSnapshot(
                    region=region, family=tags.get(NAME_TAG, ""), variant_id=tags[VARIANT_TAG],
                    release_id=tags[RELEASE_TAG], snapshot_id=snapshot["SnapshotId"],
                    started=_parse_time(str(snapshot.get("StartTime", ""))) or datetime(1970, 1, 1, tzinfo=UTC)))
        return found

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(regions)))) as pool:
        return [s for found in pool.map(scan, regions) for s in found]


def snapshots_of(ec2: EC2Client, filters: list[Any]) -> list[Any]:
    pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters)
    return [s for page in pages for s in page.get("Snapshots", [])]


def delete_orphan(clients: Clients, snapshot: TaggedSnapshot) -> StepResult:
    why = _delete_snapshot(clients.ec2(snapshot.region), snapshot.snapshot_id)
    return StepResult("delete-snapshot", snapshot.region, "", snapshot.release_id, snapshot.variant_id,
                      "done" if why is None else "failed", why or "no AMI holds it",
                      () if why else (snapshot.snapshot_id,), (f"{snapshot.snapshot_id} ({why})",) if why else ())


def _attempt(action: Action, ami: PublishedAmi, operation: str, call: Callable[[], object]) -> StepResult:
    def result(outcome: Outcome, detail: str = "") -> StepResult:
        return StepResult(action, ami.region, ami.ami_id, ami.release_id, ami.variant_id, outcome, detail)

    try:
        call_or_not_implemented(operation, call)
    except NotImplementedByEndpoint as exc:
        return result("not-implemented", str(exc))
    except (ClientError, BotoCoreError) as exc:
        return result("failed", aws_error_message(exc))
    return result("done")


def set_protection(clients: Clients, ami: PublishedAmi, enabled: bool) -> StepResult:
    """Deregistration protection on (without the 24-hour cooldown, so an aged-out release can be pruned the
    same day it is released) or off."""
    ec2 = clients.ec2(ami.region, max_attempts=1)  # call_or_not_implemented retries; botocore would retry 500s
    if enabled:
        return _attempt("protect", ami, "EnableImageDeregistrationProtection",
                        lambda: ec2.enable_image_deregistration_protection(ImageId=ami.ami_id, WithCooldown=False))
    return _attempt("unprotect", ami, "DisableImageDeregistrationProtection",
                    lambda: ec2.disable_image_deregistration_protection(ImageId=ami.ami_id))


def deprecate(clients: Clients, ami: PublishedAmi, when: datetime) -> StepResult:
    ec2 = clients.ec2(ami.region, max_attempts=1)
    found = _attempt("deprecate", ami, "EnableImageDeprecation",
                     lambda: ec2.enable_image_deprecation(ImageId=ami.ami_id, DeprecateAt=when))
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return StepResult(found.action, found.region, found.ami_id, found.release_id, found.variant_id, found.outcome,
                      stamp if found.outcome == "done" else f"{stamp}: {found.detail}")


def _delete_snapshot(ec2: EC2Client, snapshot_id: str) -> str | None:
    """None when deleted (or already gone); else why it is still there."""
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidSnapshot.NotFound":
            return None
        return aws_error_message(exc)
    return None


def remove(clients: Clients, ami: PublishedAmi, ssm_prefix: str) -> StepResult:
    """Deregister the AMI, then delete its snapshots and the release's other tagged ones (the uploaded source
    snapshot EC2 keeps apart from a copy); an SSM 'latest' parameter naming it is deleted too."""
    ec2 = clients.ec2(ami.region)

    def result(outcome: Outcome, detail: str = "", deleted: tuple[str, ...] = (),
               left: tuple[str, ...] = ()) -> StepResult:
        return StepResult("remove", ami.region, ami.ami_id, ami.release_id, ami.variant_id, outcome, detail, deleted,
                          left)

    try:
        ec2.deregister_image(ImageId=ami.ami_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _GONE:
            return result("failed", aws_error_message(exc))  # e.g. protected: its snapshots stay with it
    snapshots = list(ami.snapshot_ids)
    try:
        for snapshot in snapshots_tagged(ec2, archami_tags(ami.family, ami.variant_id, ami.release_id)):
            if snapshot["SnapshotId"] not in snapshots:
                snapshots.append(snapshot["SnapshotId"])
    except ClientError as exc:
        return result("failed", f"deregistered; listing its snapshots: {aws_error_message(exc)}",
                      left=tuple(snapshots))
    deleted, left = [], []
    for snapshot in snapshots:
        why = _delete_snapshot(ec2, snapshot)
        if why is None:
            deleted.append(snapshot)
        else:
            left.append(f"{snapshot} ({why})")
    _drop_latest_parameter(clients, ami, ssm_prefix)
    if left:
        return result("failed", "deregistered, but snapshots are left", tuple(deleted), tuple(left))
    return result("done", "", tuple(deleted))


def _drop_latest_parameter(clients: Clients, ami: PublishedAmi, ssm_prefix: str) -> None:
    """An SSM 'latest' parameter must not point at a deregistered AMI."""
    ssm = clients.ssm(ami.region)
    name = ssm_parameter_name(ssm_prefix, ami.family, ami.variant_id)
    try:
        value = ssm.get_parameter(Name=name)["Parameter"].get("Value")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return
        raise
    if value == ami.ami_id:
        ssm.delete_parameter(Name=name)


@dataclass
class LifecycleRun:
    """What one run did, call by call (what `archami prune --json` prints and the prune log keeps)."""

    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if s.outcome == "failed"]

    @property
    def not_implemented(self) -> list[StepResult]:
        return [s for s in self.steps if s.outcome == "not-implemented"]


def run_steps(calls: list[Callable[[], StepResult]], workers: int = 8) -> LifecycleRun:
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls) or 1))) as pool:
        return LifecycleRun(list(pool.map(lambda call: call(), calls)))
