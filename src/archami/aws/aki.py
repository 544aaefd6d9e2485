"""Amazon's pv-grub kernels (AKIs): paravirtual AMIs boot through one of them, found by name per region."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from archami.errors import ArchamiError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# pv-grub-hd0_*: the root filesystem is the whole disk; pv-grub-hd00_*: the first partition of a
# partitioned disk, which is what archami builds.
PARTITIONED = "pv-grub-hd00_*"
UNPARTITIONED = "pv-grub-hd0_*"
_VERSION = re.compile(r"_(\d+(?:\.\d+)*)")


def _version(name: str) -> tuple[int, ...]:
    match = _VERSION.search(name)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def find_pv_grub_aki(ec2: EC2Client, region: str, ec2_architecture: str, *, partitioned: bool = True) -> str:
    """The newest pv-grub AKI for this architecture in the region; ArchamiError where there is none."""
    pattern = PARTITIONED if partitioned else UNPARTITIONED
    images = ec2.describe_images(
        Owners=["amazon"],
        Filters=[
            {"Name": "name", "Values": [pattern]},
            {"Name": "architecture", "Values": [ec2_architecture]},
            {"Name": "image-type", "Values": ["kernel"]},
        ],
    )["Images"]
    images = [i for i in images if i.get("ImageId", "").startswith("aki-") or i.get("ImageType") == "kernel"]
    if not images:
        raise ArchamiError(
            f"{region}: no Amazon pv-grub kernel ({pattern}, {ec2_architecture}) in this region; "
            "paravirtual AMIs cannot be published there (leave the region out or publish hvm)"
        )
    best = max(images, key=lambda i: (_version(i.get("Name", "")), i.get("Name", "")))
    return str(best["ImageId"])
