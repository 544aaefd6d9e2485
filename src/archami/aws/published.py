"""What archami has published: the newest AMI of a variant in a region, and old releases to remove.

latest_ami asks the SSM parameter, else describe_images. Releases are found by archami's tags on the AMIs
(archami:name, archami:variant, archami:release), grouped per image family and variant; prune keeps the
newest N, or those registered on or after a date, and deregisters the rest with their snapshots in every
region.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from archami.aws.clients import AwsSettings, Clients, resolve_regions
from archami.aws.distribute import ssm_parameter_name
from archami.aws.errors import as_archami_errors
from archami.aws.images import (
    NAME_TAG,
    RELEASE_TAG,
    VARIANT_TAG,
    archami_tags,
    delete_snapshot,
    deregister_with_snapshots,
    image_snapshot_ids,
    snapshots_tagged,
    tags_of,
)
from archami.config.publish import DEFAULT_SSM_PREFIX
from archami.errors import ArchamiError


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


@dataclass
class PruneAction:
    region: str
    family: str
    variant_id: str
    release_id: str
    ami_id: str
    name: str
    created: str
    snapshot_ids: list[str] = field(default_factory=list)


def _created(image: Any) -> datetime:
    return datetime.fromisoformat(str(image.get("CreationDate", "1970-01-01T00:00:00Z")).replace("Z", "+00:00"))


def find_published(clients: Clients, regions: list[str], family: str | None = None) -> list[PruneAction]:
    """Every archami AMI in these regions (optionally of one family), with its snapshots."""
    found: list[PruneAction] = []
    filters: list[Any] = [{"Name": "tag-key", "Values": [RELEASE_TAG]}]
    if family:
        filters.append({"Name": f"tag:{NAME_TAG}", "Values": [family]})

    def scan(region: str) -> list[PruneAction]:
        images = clients.ec2(region).describe_images(Owners=["self"], Filters=filters)["Images"]
        out = []
        for image in images:
            tags = tags_of(image)
            if RELEASE_TAG not in tags or VARIANT_TAG not in tags:
                continue
            out.append(
                PruneAction(
                    region=region,
                    family=tags.get(NAME_TAG, ""),
                    variant_id=tags[VARIANT_TAG],
                    release_id=tags[RELEASE_TAG],
                    ami_id=image["ImageId"],
                    name=image.get("Name", ""),
                    created=str(image.get("CreationDate", "")),
                    snapshot_ids=image_snapshot_ids(image),
                )
            )
        return out

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(regions)))) as pool:
        for actions in pool.map(scan, regions):
            found.extend(actions)
    return found


def select_old(
    published: list[PruneAction], *, keep: int | None = None, older_than: datetime | None = None
) -> list[PruneAction]:
    """The AMIs of releases to remove: beyond the newest `keep` per family+variant, or created before a date."""
    if (keep is None) == (older_than is None):
        raise ArchamiError("give exactly one of --keep N or --older-than DATE")
    if keep is not None and keep < 1:
        raise ArchamiError("--keep must be at least 1 (the newest release stays)")
    by_variant: dict[tuple[str, str], dict[str, list[PruneAction]]] = defaultdict(lambda: defaultdict(list))
    for action in published:
        by_variant[(action.family, action.variant_id)][action.release_id].append(action)
    doomed: list[PruneAction] = []
    for releases in by_variant.values():

        def first_created(release: str, releases: dict[str, list[PruneAction]] = releases) -> tuple[datetime, str]:
            return (min(_created({"CreationDate": a.created}) for a in releases[release]), release)

        ordered = sorted(releases, key=first_created, reverse=True)  # newest first
        if keep is not None:
            old = ordered[keep:]
        else:
            assert older_than is not None
            old = [r for r in ordered if first_created(r)[0] < older_than]
        for release in old:
            doomed.extend(releases[release])
    return sorted(doomed, key=lambda a: (a.family, a.variant_id, a.release_id, a.region))


def _drop_latest_parameter(clients: Clients, action: PruneAction, ssm_prefix: str) -> None:
    """An SSM 'latest' parameter must not point at a deregistered AMI."""
    ssm = clients.ssm(action.region)
    name = ssm_parameter_name(ssm_prefix, action.family, action.variant_id)
    try:
        value = ssm.get_parameter(Name=name)["Parameter"].get("Value")
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ParameterNotFound":
            return
        raise
    if value == action.ami_id:
        ssm.delete_parameter(Name=name)


def apply_prune(
    clients: Clients, actions: list[PruneAction], ssm_prefix: str = DEFAULT_SSM_PREFIX
) -> list[PruneAction]:
    """Deregister each AMI, delete its snapshots and any other snapshot tagged with its release."""

    def remove(action: PruneAction) -> PruneAction:
        ec2 = clients.ec2(action.region)
        image = {
            "ImageId": action.ami_id,
            "BlockDeviceMappings": [{"Ebs": {"SnapshotId": s}} for s in action.snapshot_ids],
        }
        deleted = deregister_with_snapshots(ec2, image)
        tags = archami_tags(action.family, action.variant_id, action.release_id)
        for snapshot in snapshots_tagged(ec2, tags):  # the uploaded source snapshot, when EC2 kept it apart
            if delete_snapshot(ec2, snapshot["SnapshotId"]):
                deleted.append(snapshot["SnapshotId"])
        action.snapshot_ids = sorted(set(deleted))
        _drop_latest_parameter(clients, action, ssm_prefix)
        return action

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(remove, actions))


@as_archami_errors
def prune(
    clients: Clients,
    regions: list[str] | Literal["all"],
    *,
    source_region: str | None = None,
    family: str | None = None,
    keep: int | None = None,
    older_than: datetime | None = None,
    dry_run: bool = False,
    ssm_prefix: str = DEFAULT_SSM_PREFIX,
) -> list[PruneAction]:
    """Plan (and unless dry_run, carry out) the removal of old releases; returns the actions."""
    region_list = resolve_regions(clients, regions, source_region)
    actions = select_old(find_published(clients, region_list, family), keep=keep, older_than=older_than)
    if dry_run:
        return actions
    return apply_prune(clients, actions, ssm_prefix)
