"""AMIs and snapshots in one region: archami's tags, volume sizes, RegisterImage, find, wait, copy, deregister, AKIs.

Every resource archami creates carries its tags (archami:name / archami:variant / archami:release), so a
re-run or prune can find, adopt or delete it.

RegisterImage sets every attribute explicitly: EC2's defaults are wrong for us (VirtualizationType=
paravirtual, Architecture=i386, a gp2 volume), and some can never be changed later (ImdsSupport).
Paravirtual AMIs boot through one of Amazon's pv-grub kernels (AKIs), found by name per region.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from archami.artifacts import Manifest
from archami.errors import ArchamiError
from archami.image.pvgrub import pv_grub_boot

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

GIB = 1024**3


def volume_size_gib(image_size: int) -> int:
    """Smallest whole number of GiB that holds the image (EBS volumes are sized in GiB)."""
    return max(1, -(-image_size // GIB))


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


# RegisterImage

INSTANCE_STORE_ROOT = "/dev/sda1"  # what the bundle's block_device_mapping names as root


def register_boot_mode(manifest: Manifest) -> str:
    """BootMode for an hvm AMI. Instance-store AMIs boot only on the Xen instance types that have instance
    storage as their root (m3, c3, r3, i2, d2 ...): none of them has UEFI or a TPM, so such an AMI is
    legacy-bios whatever its (hybrid) disk could do; a manifest from before the variant said so included."""
    if manifest.variant.root_device == "instance-store":
        return "legacy-bios"
    return manifest.boot_mode or manifest.variant.boot_mode


def register_params(
    manifest: Manifest,
    *,
    ami_name: str,
    tags: dict[str, str],
    snapshot_id: str | None = None,
    image_location: str | None = None,
    kernel_id: str | None = None,
) -> dict[str, Any]:
    """The RegisterImage request for one variant: EBS (snapshot_id) or instance-store (image_location)."""
    variant = manifest.variant
    hvm = variant.virtualization == "hvm"
    if (snapshot_id is None) == (image_location is None):
        raise ValueError("exactly one of snapshot_id (EBS) or image_location (instance-store)")
    if not hvm and not kernel_id:
        raise ArchamiError(f"{variant.id}: paravirtual images need a pv-grub kernel (AKI)")
    description = (manifest.description or f"{manifest.definition_name} {variant.label}")[:255]
    params: dict[str, Any] = {
        "Name": ami_name,
        "Description": description,
        "Architecture": variant.ec2_architecture,
        "VirtualizationType": variant.virtualization,
        "ImdsSupport": "v2.0",  # IMDSv2 only; inherited by copies and cannot be undone
    }
    if snapshot_id is not None:
        root = manifest.root_device_name
        params["RootDeviceName"] = root
        params["BlockDeviceMappings"] = [
            {
                "DeviceName": root,
                "Ebs": {
                    "SnapshotId": snapshot_id,
                    "VolumeSize": volume_size_gib(manifest.image_size),
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                },
            }
        ]
    else:
        params["ImageLocation"] = image_location
        params["RootDeviceName"] = INSTANCE_STORE_ROOT
    # Tagged at creation, so even a run killed right after this call leaves an AMI a re-run can find.
    # (The snapshot was tagged by StartSnapshot; instance-store images have none.)
    params["TagSpecifications"] = tag_specifications(["image"], tags)
    if hvm:
        params["EnaSupport"] = True
        params["SriovNetSupport"] = "simple"
        params["BootMode"] = register_boot_mode(manifest)
        if params["BootMode"] in ("uefi", "uefi-preferred"):
            # NitroTPM needs UEFI; with uefi-preferred it is offered where the instance boots UEFI.
            params["TpmSupport"] = "v2.0"
    else:
        # pv-grub (the AKI) reads the root filesystem's /boot/grub/menu.lst; firmware boot modes do not apply.
        params["KernelId"] = kernel_id
    return params


def register(ec2: EC2Client, params: dict[str, Any]) -> str:
    ami_id: str = ec2.register_image(**params)["ImageId"]
    return ami_id


# Amazon's pv-grub kernels

_VERSION = re.compile(r"_(\d+(?:\.\d+)*)")


def _version(name: str) -> tuple[int, ...]:
    match = _VERSION.search(name)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def find_pv_grub_aki(ec2: EC2Client, region: str, ec2_architecture: str, *, scheme: str | None) -> str:
    """The newest pv-grub AKI for this architecture in the region that reads the root of a disk with this
    partition scheme (the manifest's; image/pvgrub.py holds the one table); ArchamiError where there is none."""
    pattern = pv_grub_boot(scheme).aki_name
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
