"""RegisterImage with every attribute explicit.

EC2's defaults are wrong for us (VirtualizationType=paravirtual, Architecture=i386, a gp2 volume), and some
attributes can never be changed later (ImdsSupport), so nothing is left to a default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archami.artifacts import Manifest
from archami.aws.blocks import volume_size_gib
from archami.aws.tags import tag_specifications
from archami.errors import ArchamiError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

INSTANCE_STORE_ROOT = "/dev/sda1"  # what the bundle's block_device_mapping names as root


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
        params["BootMode"] = manifest.boot_mode or variant.boot_mode
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
