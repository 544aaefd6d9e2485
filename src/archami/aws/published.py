"""What archami has published: the newest AMI of a variant in a region, and old releases to remove.

latest_ami asks the SSM parameter, else describe_images. Releases are found by archami's tags on the AMIs
(archami:name, archami:variant, archami:release), grouped per image family and variant; prune plans with
release/policy.py (keep N, keep recent, never the current or a protected one) and carries the plan out with
aws/lifecycle.py in every region.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from archami.aws.clients import AwsSettings, Clients, resolve_regions
from archami.aws.distribute import ssm_parameter_name
from archami.aws.errors import as_archami_errors
from archami.aws.images import VARIANT_TAG
from archami.aws.lifecycle import (
    LifecycleRun,
    StepResult,
    delete_orphan,
    deprecate,
    published_amis,
    remove,
    run_steps,
    set_protection,
    tagged_snapshots,
)
from archami.config.publish import DEFAULT_SSM_PREFIX
from archami.release.policy import PrunePlan, PrunePolicy, plan_prune


@as_archami_errors
def latest_ami(
    region: str,
    variant_id: str,
    *,
    family: str | None = None,
    owner: str = "self",
    endpoint_url: str | None = None,
    ssm_prefix: str = DEFAULT_SSM_PREFIX,
    clients: Clients | None = None,
) -> str | None:
    """The AMI id, or None when nothing is published.

    With `family` (the definition name) the SSM parameter /archami/<family>/<variant>/latest answers in one
    call; otherwise, or when it is missing, the owner's images named <family>-<variant>-* (or tagged with
    the variant) are searched and the newest by creation date wins.
    """
    clients = clients or Clients(AwsSettings(endpoint_url=endpoint_url))
    if family:
        try:
            value = clients.ssm(region).get_parameter(Name=ssm_parameter_name(ssm_prefix, family, variant_id))
            return str(value["Parameter"]["Value"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ParameterNotFound":
                raise
    filters: list[Any] = (
        [{"Name": "name", "Values": [f"{family}-{variant_id}-*"]}]
        if family
        else [{"Name": f"tag:{VARIANT_TAG}", "Values": [variant_id]}]
    )
    images = clients.ec2(region).describe_images(Owners=[owner], Filters=filters)["Images"]
    images = [i for i in images if i.get("State", "available") == "available"]
    if not images:
        return None
    newest = max(images, key=lambda i: (str(i.get("CreationDate", "")), str(i.get("Name", ""))))
    return str(newest["ImageId"])


@dataclass(frozen=True)
class PruneReport:
    regions: list[str]
    plan: PrunePlan
    run: LifecycleRun | None = None  # None: a dry run, nothing was changed

    @property
    def ok(self) -> bool:
        return self.run is None or not self.run.failed


def apply_plan(clients: Clients, plan: PrunePlan, ssm_prefix: str = DEFAULT_SSM_PREFIX) -> LifecycleRun:
    """Release the protection of aged-out releases, deprecate the old ones kept, remove the rest."""
    calls: list[Callable[[], StepResult]] = [
        *(functools.partial(set_protection, clients, ami, False) for ami in plan.to_unprotect),
        *(functools.partial(deprecate, clients, ami, plan.deprecate_at) for ami in plan.to_deprecate),
    ]
    run = run_steps(calls)
    run.steps += run_steps([functools.partial(remove, clients, ami, ssm_prefix) for ami in plan.to_remove]).steps
    run.steps += run_steps([functools.partial(delete_orphan, clients, s) for s in plan.orphans]).steps
    return run


@as_archami_errors
def prune(
    clients: Clients,
    regions: list[str] | Literal["all"],
    *,
    policy: PrunePolicy,
    source_region: str | None = None,
    family: str | None = None,
    dry_run: bool = False,
    ssm_prefix: str = DEFAULT_SSM_PREFIX,
    now: datetime | None = None,
) -> PruneReport:
    """Plan (and unless dry_run, carry out) the lifecycle policy over every archami AMI in these regions."""
    policy.check()
    region_list = resolve_regions(clients, regions, source_region)
    plan = plan_prune(published_amis(clients, region_list, family), policy, now or datetime.now(UTC),
                      tagged_snapshots(clients, region_list, family))
    if dry_run:
        return PruneReport(region_list, plan)
    return PruneReport(region_list, plan, apply_plan(clients, plan, ssm_prefix))
