"""Per region, once its AMI is available: launch permission, deprecation, SSM parameter, then a sweep
that removes whatever an interrupted or retried run left behind (duplicate AMIs, orphan snapshots)."""

from __future__ import annotations

from archami.aws.context import PublishContext
from archami.aws.crashpoints import boundary
from archami.aws.expose import deprecate, make_public, put_latest_parameter, ssm_parameter_name
from archami.aws.images import (
    delete_snapshot,
    deregister_with_snapshots,
    image_snapshot_ids,
    images_named,
    images_tagged,
    snapshots_tagged,
)
from archami.aws.state import RegionState


def expose(ctx: PublishContext, region: str) -> None:
    ec2 = ctx.clients.ec2(region)
    st = ctx.store.region(region)
    assert st.ami_id is not None
    if ctx.public and not st.public:
        make_public(ec2, st.ami_id)
        ctx.store.update_region(region, lambda r: setattr(r, "public", True))
        boundary("made-public")
    if ctx.deprecate_at and st.deprecate_at is None:
        ok = deprecate(ctx.clients.ec2(region, max_attempts=1), st.ami_id, ctx.deprecate_at)
        when = ctx.deprecate_at.strftime("%Y-%m-%dT%H:%M:%SZ") if ok else "not-implemented"
        if not ok:
            ctx.log(f"{region}: EnableImageDeprecation is not implemented by this endpoint; skipped")
        ctx.store.update_region(region, lambda r: setattr(r, "deprecate_at", when))
    if st.ssm_parameter is None:
        name = ssm_parameter_name(ctx.ssm_prefix, ctx.family, ctx.variant_id)
        put_latest_parameter(ctx.clients.ssm(region), name, st.ami_id)
        ctx.store.update_region(region, lambda r: setattr(r, "ssm_parameter", name))
        boundary("ssm-recorded")


def sweep(ctx: PublishContext, region: str) -> list[str]:
    """Delete this release's AMIs and snapshots in the region that the state file does not own.

    They come from retried or interrupted create calls (a dropped answer to RegisterImage/CopyImage, a
    kill between StartSnapshot and the state write). Found by name and by archami tags.
    """
    ec2 = ctx.clients.ec2(region)
    st = ctx.store.region(region)
    removed: list[str] = []
    keep_snapshots = {s for s in [st.snapshot_id, *st.ami_snapshot_ids] if s}
    candidates = {i["ImageId"]: i for i in [*images_named(ec2, ctx.ami_name), *images_tagged(ec2, ctx.tags)]}
    for ami_id, image in sorted(candidates.items()):
        if ami_id == st.ami_id:
            keep_snapshots.update(image_snapshot_ids(image))
            continue
        ctx.log(f"{region}: removing duplicate AMI {ami_id}")
        removed.append(ami_id)
        removed += deregister_with_snapshots(ec2, image, keep_snapshots)
    for snapshot in snapshots_tagged(ec2, ctx.tags):
        sid = snapshot["SnapshotId"]
        if sid not in keep_snapshots and delete_snapshot(ec2, sid):
            ctx.log(f"{region}: removed orphan snapshot {sid}")
            removed.append(sid)

    def swept(r: RegionState) -> None:
        r.swept = True

    ctx.store.update_region(region, swept)
    return removed
