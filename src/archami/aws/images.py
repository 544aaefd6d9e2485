"""AMIs in one region: find by name or tags, wait until available, copy, deregister with snapshots."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from archami.aws.tags import tag_filters, tag_list
from archami.errors import ArchamiError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def images_named(ec2: EC2Client, name: str) -> list[Any]:
    """Our AMIs with exactly this name. EC2 allows one per name and region; an emulator may hold more."""
    images: list[Any] = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return sorted((i for i in images if i.get("State") != "deregistered"), key=lambda i: i["ImageId"])


def images_tagged(ec2: EC2Client, tags: dict[str, str]) -> list[Any]:
    images: list[Any] = ec2.describe_images(Owners=["self"], Filters=tag_filters(tags))["Images"]
    return [i for i in images if i.get("State") != "deregistered"]


def snapshots_tagged(ec2: EC2Client, tags: dict[str, str]) -> list[Any]:
    snapshots: list[Any] = ec2.describe_snapshots(OwnerIds=["self"], Filters=tag_filters(tags))["Snapshots"]
    return snapshots


def image_snapshot_ids(image: Any) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def describe_image(ec2: EC2Client, ami_id: str) -> Any | None:
    try:
        images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return None
        raise
    return images[0] if images else None


def wait_available(ec2: EC2Client, ami_id: str, timeout: float = 3600, poll: float = 2) -> Any:
    """Poll until the AMI is available; 'not found' just after creation is retried, 'failed' is an error."""
    deadline = time.monotonic() + timeout
    while True:
        image = describe_image(ec2, ami_id)
        state = image.get("State") if image else None
        if image and state == "available":
            return image
        if state in ("failed", "invalid", "error", "deregistered"):
            reason = (image or {}).get("StateReason", {}).get("Message", "")
            raise ArchamiError(f"AMI {ami_id} is {state}: {reason}")
        if time.monotonic() > deadline:
            raise ArchamiError(f"AMI {ami_id} not available after {timeout:.0f}s (state {state})")
        time.sleep(poll)


def tag_resources(ec2: EC2Client, resource_ids: list[str], tags: dict[str, str]) -> None:
    """Tags again after creation: idempotent, and needed where tags given at creation are not kept
    (copies; emulators that drop TagSpecifications)."""
    if resource_ids:
        ec2.create_tags(Resources=resource_ids, Tags=tag_list(tags))


def copy_image(
    ec2_target: EC2Client, *, source_region: str, source_ami: str, name: str, description: str, token: str
) -> str:
    ami_id: str = ec2_target.copy_image(
        SourceRegion=source_region,
        SourceImageId=source_ami,
        Name=name,
        Description=description,
        CopyImageTags=True,
        ClientToken=token,  # a retried copy returns the first copy instead of making a second
    )["ImageId"]
    return ami_id


def delete_snapshot(ec2: EC2Client, snapshot_id: str) -> bool:
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "InvalidSnapshot.NotFound":
            return False
        raise
    return True


def deregister_with_snapshots(ec2: EC2Client, image: Any, keep_snapshots: set[str] | None = None) -> list[str]:
    """Deregister an AMI, then delete the snapshots behind it (EC2 keeps them unless told otherwise)."""
    snapshots = [s for s in image_snapshot_ids(image) if s not in (keep_snapshots or set())]
    try:
        ec2.deregister_image(ImageId=image["ImageId"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            raise
    return [s for s in snapshots if delete_snapshot(ec2, s)]
