"""The source region: get the image into a snapshot (or an S3 bundle) and register the AMI there.

Each step first looks at the state file (and, for what a crash may have created unrecorded, at EC2 by
name), so re-running after any interruption continues instead of starting over.
"""

from __future__ import annotations

import shutil

from botocore.exceptions import ClientError

from archami.aws import upload
from archami.aws.bundle import load_ec2_certificate, load_signing_key, write_bundle
from archami.aws.context import PublishContext
from archami.aws.images import (
    delete_snapshot,
    image_snapshot_ids,
    images_named,
    register,
    register_params,
    tag_resources,
    volume_size_gib,
    wait_available,
)
from archami.aws.state import PublishState, RegionState, boundary
from archami.aws.upload import EBS_BLOCK_SIZE, data_block_indices


def ensure_snapshot(ctx: PublishContext) -> str:
    if ctx.settings.method == "s3-import":
        return _ensure_imported_snapshot(ctx)
    return _ensure_uploaded_snapshot(ctx)


def _ensure_uploaded_snapshot(ctx: PublishContext) -> str:
    region = ctx.source_region
    ec2, ebs = ctx.clients.ec2(region), ctx.clients.ebs(region)
    st = ctx.store.region(region)
    if st.snapshot_id and st.snapshot_complete:
        return st.snapshot_id
    snapshot_id = st.snapshot_id
    if snapshot_id:
        state = upload.snapshot_state(ec2, snapshot_id)
        if state == "completed":  # CompleteSnapshot went through just before an interruption
            ctx.store.update_region(region, _mark_complete)
            return snapshot_id
        if state != "pending":  # failed, or gone (timed out): start again with a fresh ClientToken
            ctx.log(f"{region}: snapshot {snapshot_id} is {state or 'gone'}; uploading again")
            if state is not None:
                delete_snapshot(ec2, snapshot_id)
            ctx.store.update_region(region, _forget_snapshot)
            snapshot_id = None
        else:
            ctx.log(f"{region}: resuming upload into pending snapshot {snapshot_id}")
    if snapshot_id is None:
        attempt = ctx.store.region(region).upload_attempt
        # Same token as an interrupted run's StartSnapshot: EBS returns that snapshot instead of a new one.
        snapshot_id = upload.start_snapshot(
            ebs,
            volume_gib=volume_size_gib(ctx.manifest.image_size),
            description=ctx.description,
            tags=ctx.tags,
            client_token=ctx.token(region, "snapshot", attempt),
            encrypted=ctx.settings.encrypted,
            kms_key_arn=ctx.settings.kms_key_arn,
        )
        boundary("snapshot-started")
        sid = snapshot_id
        ctx.store.update_region(region, lambda r: setattr(r, "snapshot_id", sid))
        boundary("snapshot-recorded")
        ctx.log(f"{region}: uploading into snapshot {snapshot_id}")
    if ctx.progress:
        total = len(data_block_indices(ctx.image)) * EBS_BLOCK_SIZE
        if ctx.settings.encrypted:
            total = volume_size_gib(ctx.manifest.image_size) * 1024**3
        ctx.progress.begin(region, total)
    try:
        result = upload.upload_image(
            ebs,
            ctx.image,
            snapshot_id=snapshot_id,
            encrypted=ctx.settings.encrypted,
            workers=ctx.workers,
            on_progress=ctx.progress.advance if ctx.progress else None,
        )
    finally:
        if ctx.progress:
            ctx.progress.end()
    boundary("snapshot-completed")
    ctx.store.update(lambda s: _count_upload(s, result))
    upload.wait_snapshot_completed(ec2, snapshot_id, poll=ctx.poll)
    ctx.store.update_region(region, _mark_complete)
    boundary("snapshot-complete-recorded")
    return snapshot_id


def _count_upload(state: PublishState, result: upload.UploadResult) -> None:
    state.bytes_uploaded += result.bytes_sent
    state.blocks_uploaded += result.blocks_sent


def _mark_complete(r: RegionState) -> None:
    r.snapshot_complete = True


def _forget_snapshot(r: RegionState) -> None:
    r.snapshot_id = None
    r.snapshot_complete = False
    r.upload_attempt += 1


def _ensure_imported_snapshot(ctx: PublishContext) -> str:
    """The classic path: the raw image to S3, then ImportSnapshot (slower; for accounts without EBS direct)."""
    region = ctx.source_region
    ec2, s3 = ctx.clients.ec2(region), ctx.clients.s3(region)
    st = ctx.store.region(region)
    if st.snapshot_id and st.snapshot_complete:
        return st.snapshot_id
    bucket = _bucket(ctx)
    key = ctx.s3_key(ctx.image.name)
    if not st.import_task_id:
        if st.s3_object != f"{bucket}/{key}":
            upload.ensure_bucket(s3, bucket, region)
            ctx.log(f"{region}: uploading {ctx.image.name} to s3://{bucket}/{key}")
            upload.upload_to_s3(s3, ctx.image, bucket, key)
            ctx.store.update_region(region, lambda r: setattr(r, "s3_object", f"{bucket}/{key}"))
            boundary("s3-uploaded")
        task = upload.start_import(
            ctx.clients.ec2(region, max_attempts=1),  # retried by call_or_not_implemented (aws/errors.py)
            bucket=bucket,
            key=key,
            description=ctx.description,
            token=ctx.token(region, "import"),
            tags=ctx.tags,
        )
        ctx.store.update_region(region, lambda r: setattr(r, "import_task_id", task))
        boundary("import-recorded")
        st = ctx.store.region(region)
    assert st.import_task_id is not None
    snapshot_id = upload.wait_import(ec2, st.import_task_id, poll=max(ctx.poll, 1))
    tag_resources(ec2, [snapshot_id], ctx.tags)

    def done(r: RegionState) -> None:
        r.snapshot_id = snapshot_id
        r.snapshot_complete = True

    ctx.store.update_region(region, done)
    s3.delete_object(Bucket=bucket, Key=key)  # the snapshot holds the image now
    return snapshot_id


def _bucket(ctx: PublishContext) -> str:
    ctx.settings.check_can_publish(ctx.manifest.variant.root_device)  # the preflight checked it already
    assert ctx.settings.bucket is not None
    return ctx.settings.bucket


def ensure_bundle(ctx: PublishContext) -> str:
    """Instance-store: bundle the image, upload parts + manifest to S3; returns the ImageLocation."""
    region = ctx.source_region
    st = ctx.store.region(region)
    if st.s3_object:
        return st.s3_object
    bucket = _bucket(ctx)
    certificate, signing_key = ctx.settings.ec2_certificate, ctx.settings.signing_key
    assert certificate is not None  # _bucket checked it
    s3 = ctx.clients.s3(region)
    bundle_dir = ctx.build_dir / "bundle"
    shutil.rmtree(bundle_dir, ignore_errors=True)  # an interrupted run's parts (new key and IV each time)
    bundle = write_bundle(
        ctx.image,
        bundle_dir,
        name="image",
        account_id=ctx.clients.account_id(region),
        architecture=ctx.manifest.variant.ec2_architecture,
        ec2_certificate_pem=load_ec2_certificate(certificate),
        user_private_key=load_signing_key(signing_key) if signing_key else None,
        kernel_id=ctx.kernel_ids.get(region),
    )
    upload.ensure_bucket(s3, bucket, region)
    for path in [*bundle.parts, bundle.manifest]:  # the manifest last: it is what registration reads
        upload.upload_to_s3(s3, path, bucket, ctx.s3_key(path.name))
    location = f"{bucket}/{ctx.s3_key(bundle.manifest.name)}"
    ctx.store.update_region(region, lambda r: setattr(r, "s3_object", location))
    boundary("bundle-uploaded")
    return location


def ensure_registered(ctx: PublishContext, *, snapshot_id: str | None, image_location: str | None) -> str:
    region = ctx.source_region
    ec2 = ctx.clients.ec2(region)
    st = ctx.store.region(region)
    ami_id = st.ami_id
    if ami_id is None:
        existing = images_named(ec2, ctx.ami_name)  # registered by a run that died before recording it
        if existing:
            ami_id = str(existing[0]["ImageId"])
            ctx.log(f"{region}: adopting {ami_id} registered by an interrupted run")
        else:
            params = register_params(
                ctx.manifest,
                ami_name=ctx.ami_name,
                tags=ctx.tags,
                snapshot_id=snapshot_id,
                image_location=image_location,
                kernel_id=ctx.kernel_ids.get(region),
            )
            try:
                ami_id = register(ec2, params)
            except ClientError as exc:
                # A retried RegisterImage whose first attempt went through: the name is taken, by us.
                if exc.response["Error"]["Code"] != "InvalidAMIName.Duplicate":
                    raise
                ami_id = str(images_named(ec2, ctx.ami_name)[0]["ImageId"])
            boundary("ami-registered")
        found = ami_id
        ctx.store.update_region(region, lambda r: setattr(r, "ami_id", found))
        boundary("ami-recorded")
        ctx.log(f"{region}: registered {ami_id}")
    if not st.ami_available:
        tag_resources(ec2, [ami_id], ctx.tags)
        image = wait_available(ec2, ami_id, poll=ctx.poll)

        def available(r: RegionState) -> None:
            r.ami_available = True
            r.ami_snapshot_ids = image_snapshot_ids(image)

        ctx.store.update_region(region, available)
        boundary("ami-available")
    return ami_id
