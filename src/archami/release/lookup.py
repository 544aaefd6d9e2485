"""Find the newest AMI of a variant in a region from the release records (no AWS call needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archami.errors import ArchamiError
from archami.release.records import RegionAmi, published_records

# What `archami latest --arch` accepts: archami's names and EC2's (arm64, i386), and Debian's amd64.
ARCHITECTURE_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
                      "i686": "i686", "i386": "i686"}


@dataclass(frozen=True)
class Found:
    release_id: str
    definition_name: str
    image: RegionAmi


def latest_from_records(releases_dir: Path, region: str, variant_id: str, name: str | None = None) -> Found | None:
    """The AMI of the newest shown release (of family `name`, or any) that published `variant_id` in `region`:
    not one verification held back, nor an AMI prune removed."""
    for record in published_records(releases_dir, name):  # newest first
        variant = record.variant(variant_id)
        if variant is not None and region in variant.regions and \
                record.removed(region, variant.regions[region].ami_id) is None:
            return Found(record.release_id, record.definition_name, variant.regions[region])
    return None


def variant_for_architecture(variant_id: str, architecture: str) -> str:
    """The id of the same variant built for `architecture` (an id names its architecture as one of its parts:
    trixie-ebs-hvm-x86_64 -> trixie-ebs-hvm-aarch64), so one --variant serves every architecture."""
    wanted = ARCHITECTURE_NAMES.get(architecture.lower())
    if wanted is None:
        raise ArchamiError(f"--arch: unknown architecture {architecture!r} (x86_64, arm64, i386)")
    parts = variant_id.split("-")
    named = [i for i, part in enumerate(parts) if part in ("x86_64", "aarch64", "i686")]
    if len(named) != 1:
        raise ArchamiError(f"--arch: variant id {variant_id!r} does not name exactly one architecture")
    parts[named[0]] = wanted
    return "-".join(parts)
