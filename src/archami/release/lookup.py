"""Find the newest AMI of a variant in a region from the release records (no AWS call needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archami.release.records import RegionAmi, load_records


@dataclass(frozen=True)
class Found:
    release_id: str
    definition_name: str
    image: RegionAmi


def latest_from_records(releases_dir: Path, region: str, variant_id: str, name: str | None = None) -> Found | None:
    """The AMI of the newest release (of family `name`, or any) that published `variant_id` in `region`."""
    for record in load_records(releases_dir, name):  # newest first
        variant = record.variant(variant_id)
        if variant is not None and region in variant.regions:
            return Found(record.release_id, record.definition_name, variant.regions[region])
    return None
