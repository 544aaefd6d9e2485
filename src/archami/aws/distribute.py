"""Every region once the source AMI exists: copy it there, expose it, sweep what an interrupted run left.

    copy:    CopyImage into the other regions, adopting copies an interrupted run already started
    expose:  launch permissions (public, accounts, organizations), deprecation time, SSM "latest" parameter
    sweep:   delete this release's AMIs and snapshots the state file does not own (duplicates, orphans)
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from archami.aws.context import PublishContext
from archami.aws.errors import NotImplementedByEndpoint, call_or_not_implemented
from archami.aws.images import (
    copy_image,
    delete_snapshot,
    deregister_with_snapshots,
    image_snapshot_ids,
    images_named,
    images_tagged,
    snapshots_tagged,
    tag_resources,
    wait_available,
)
from archami.aws.state import RegionState, boundary

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient


def ensure_copy(ctx: PublishContext, region: str, source_ami: str) -> str:
    ec2 = ctx.clients.ec2(region)
    st = ctx.store.region(region)
    ami_id = st.ami_id
    if ami_id is None:
        existing = images_named(ec2, ctx.ami_name)
        if existing:
            ami_id = str(existing[0]["ImageId"])
            ctx.log(f"{region}: adopting copy {ami_id} started by an interrupted run")
        else:
            ami_id = copy_image(
                ec2,
                source_region=ctx.source_region,
                source_ami=source_ami,
                name=ctx.ami_name,
                description=ctx.description,
                token=ctx.token(region, "copy"),
            )
            boundary("copy-started")
        found = ami_id
        ctx.store.update_region(region, lambda r: setattr(r, "ami_id", found))
        boundary("copy-recorded")
        ctx.log(f"{region}: copying to {ami_id}")
    if not st.ami_available:
        # CopyImageTags copies the AMI's tags on AWS; tagging again costs one call and covers emulators.
        tag_resources(ec2, [ami_id], ctx.tags)
        image = wait_available(ec2, ami_id, poll=ctx.poll)
        snapshots = image_snapshot_ids(image)
        tag_resources(ec2, snapshots, ctx.tags)

        def available(r: RegionState) -> None:
            r.ami_available = True
            r.ami_snapshot_ids = snapshots

        ctx.store.update_region(region, available)
        boundary("copy-available")
    return ami_id


def expose(ctx: PublishContext, region: str) -> None:
    ec2 = ctx.clients.ec2(region)
    st = ctx.store.region(region)
    assert st.ami_id is not None
    if ctx.settings.public and not st.public:
        make_public(ec2, st.ami_id)
        ctx.store.update_region(region, lambda r: setattr(r, "public", True))
        boundary("made-public")
    wanted = ctx.settings.share.launch_permissions()
    missing = [p for p in wanted if _share_target(p) not in st.shared]
    if missing:  # sharing is only ever added: a target dropped from the settings keeps what it was given
        share_with(ec2, st.ami_id, missing)
        targets = [_share_target(p) for p in missing]
        ctx.store.update_region(region, lambda r: setattr(r, "shared", [*r.shared, *targets]))
        boundary("shared")
    if ctx.deprecate_at and st.deprecate_at is None:
        ok = deprecate(ctx.clients.ec2(region, max_attempts=1), st.ami_id, ctx.deprecate_at)
        when = ctx.deprecate_at.strftime("%Y-%m-%dT%H:%M:%SZ") if ok else "not-implemented"
        if not ok:
            ctx.log(f"{region}: EnableImageDeprecation is not implemented by this endpoint; skipped")
        ctx.store.update_region(region, lambda r: setattr(r, "deprecate_at", when))
    if st.ssm_parameter is None:
        name = ssm_parameter_name(ctx.settings.ssm_prefix, ctx.family, ctx.variant_id)
        put_latest_parameter(ctx.clients.ssm(region), name, st.ami_id)
        ctx.store.update_region(region, lambda r: setattr(r, "ssm_parameter", name))
        boundary("ssm-recorded")


def _share_target(permission: dict[str, str]) -> str:
    return next(iter(permission.values()))  # the account id, organization or unit ARN


def sweep(ctx: PublishContext, region: str) -> list[str]:
    """Delete this release's AMIs and snapshots in the region that the state file does not own.

    They come from retried or interrupted create calls (a dropped answer to RegisterImage/CopyImage, a
    kill between StartSnapshot and the state write). Found by name and by archami tags.
    """
    ec2 = ctx.clients.ec2(region)
    st = ctx.store.region(region)
    removed: list[str] = []
    keep_snapshots = {s for s in [st.snapshot_id, *st.ami_snapshot_ids] if s}
    candidates = {i["ImageId"]: i for i in [*images_named(ec2, ctx.ami_name), *images_tagged(ec2, ctx.identity_tags)]}
    for ami_id, image in sorted(candidates.items()):
        if ami_id == st.ami_id:
            keep_snapshots.update(image_snapshot_ids(image))
            continue
        ctx.log(f"{region}: removing duplicate AMI {ami_id}")
        removed.append(ami_id)
        removed += deregister_with_snapshots(ec2, image, keep_snapshots)
    for snapshot in snapshots_tagged(ec2, ctx.identity_tags):
        sid = snapshot["SnapshotId"]
        if sid not in keep_snapshots and delete_snapshot(ec2, sid):
            ctx.log(f"{region}: removed orphan snapshot {sid}")
            removed.append(sid)

    def swept(r: RegionState) -> None:
        r.swept = True

    ctx.store.update_region(region, swept)
    return removed


# The EC2 and SSM calls behind expose (and the public checks of the preflight)

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


def share_with(ec2: EC2Client, ami_id: str, permissions: list[dict[str, str]]) -> None:
    """Launch permission for accounts, organizations and organizational units (no snapshot sharing needed)."""
    ec2.modify_image_attribute(ImageId=ami_id, LaunchPermission={"Add": permissions})  # type: ignore[typeddict-item]


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
