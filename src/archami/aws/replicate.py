"""Copy the source AMI into the other regions, adopting copies an interrupted run already started."""

from __future__ import annotations

from archami.aws.context import PublishContext
from archami.aws.crashpoints import boundary
from archami.aws.images import copy_image, image_snapshot_ids, images_named, tag_resources, wait_available
from archami.aws.state import RegionState


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
