"""The tags every resource archami creates carries, so a re-run or prune can find (adopt or delete) it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RELEASE_TAG = "archami:release"
VARIANT_TAG = "archami:variant"
NAME_TAG = "archami:name"  # the definition (image family) name


def archami_tags(family: str, variant_id: str, release_id: str) -> dict[str, str]:
    return {NAME_TAG: family, VARIANT_TAG: variant_id, RELEASE_TAG: release_id}


def tag_list(tags: dict[str, str]) -> list[Any]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_specifications(resource_types: Sequence[str], tags: dict[str, str]) -> list[Any]:
    return [{"ResourceType": rt, "Tags": tag_list(tags)} for rt in resource_types]


def tag_filters(tags: dict[str, str]) -> list[Any]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


def tags_of(resource: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}
