"""Make a region's AMI findable and usable: Block Public Access check, launch permission, deprecation, SSM."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from archami.aws.capability import NotImplementedByEndpoint, call_or_not_implemented

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient

BPA_UNBLOCKED = "unblocked"
BPA_NOT_IMPLEMENTED = "not-implemented"


def block_public_access_state(ec2: EC2Client) -> str:
    """'unblocked', 'block-new-sharing' (public AMIs refused), or 'not-implemented' (e.g. an emulator)."""
    try:
        answer = call_or_not_implemented("GetImageBlockPublicAccessState", ec2.get_image_block_public_access_state)
    except NotImplementedByEndpoint:
        return BPA_NOT_IMPLEMENTED
    return str(answer["ImageBlockPublicAccessState"])


PUBLIC_AMI_QUOTA_NAME = "Public AMIs"  # the Service Quotas entry limiting public AMIs per region


def _public_ami_quota(quotas: Any) -> float | None:
    """Found by name, not by a quota code archami would have to hard-code."""
    for page in quotas.get_paginator("list_service_quotas").paginate(ServiceCode="ec2"):
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") == PUBLIC_AMI_QUOTA_NAME:
                return float(quota["Value"])
    return None


def public_ami_headroom(ec2: EC2Client, quotas: Any) -> int | None:
    """How many more AMIs may be made public in the region; None when the quota cannot be read."""
    try:
        quota = call_or_not_implemented("ListServiceQuotas", lambda: _public_ami_quota(quotas))
    except (NotImplementedByEndpoint, ClientError):  # unknown to an emulator, or not permitted
        return None
    if quota is None:
        return None
    public = ec2.describe_images(Owners=["self"], Filters=[{"Name": "is-public", "Values": ["true"]}])["Images"]
    return int(quota) - len(public)


def make_public(ec2: EC2Client, ami_id: str) -> None:
    ec2.modify_image_attribute(ImageId=ami_id, LaunchPermission={"Add": [{"Group": "all"}]})


def is_public(ec2: EC2Client, ami_id: str) -> bool:
    perms = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")["LaunchPermissions"]
    return any(p.get("Group") == "all" for p in perms)


def deprecate(ec2: EC2Client, ami_id: str, when: datetime) -> bool:
    """Set the AMI's deprecation time; False when the endpoint does not implement it."""
    try:
        call_or_not_implemented(
            "EnableImageDeprecation", lambda: ec2.enable_image_deprecation(ImageId=ami_id, DeprecateAt=when)
        )
    except NotImplementedByEndpoint:
        return False
    return True


def ssm_parameter_name(prefix: str, family: str, variant_id: str) -> str:
    return f"{prefix.rstrip('/')}/{family}/{variant_id}/latest"


def put_latest_parameter(ssm: SSMClient, name: str, ami_id: str) -> None:
    # DataType aws:ec2:image makes SSM check the value is an AMI, and lets launch templates resolve it.
    ssm.put_parameter(Name=name, Value=ami_id, Type="String", DataType="aws:ec2:image", Overwrite=True)
