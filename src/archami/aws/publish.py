"""Publish one built variant to many regions: upload, register, copy, expose, sweep — resumable.

    source region:  snapshot (EBS direct, or S3 + ImportSnapshot) or S3 bundle  ->  RegisterImage
    other regions:  CopyImage (in parallel)
    every region:   launch permission, deprecation time, SSM parameter, sweep of leftovers

Every created resource is written to the state file the moment its id is known, and tagged with
archami:release / archami:variant at creation, so a re-run after any failure adopts or deletes it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archami.artifacts import (
    IMAGE_NAME,
    MANIFEST_NAME,
    Manifest,
    PublishRecord,
    RegionImage,
    read_json,
    write_json_atomic,
)
from archami.aws import finalize, replicate, source
from archami.aws.clients import AwsSettings, Clients
from archami.aws.context import Method, PublishContext, UploadProgress
from archami.aws.failures import as_archami_errors
from archami.aws.preflight import preflight
from archami.aws.regions import resolve_regions
from archami.aws.state import PublishState, RegionState, StateStore
from archami.errors import ArchamiError
from archami.image.integrity import verify_build

PUBLISH_RECORD_NAME = "publish-{release_id}.json"


def default_release_id() -> str:
    return datetime.now(UTC).strftime("%Y.%m.%d")


def ami_name(family: str, variant_id: str, release_id: str) -> str:
    return f"{family}-{variant_id}-{release_id}"


def default_state_path(build_dir: Path, release_id: str) -> Path:
    return build_dir / f"publish-{release_id}.state.json"


def _parallel(regions: list[str], step: Callable[[str], object], workers: int = 8) -> dict[str, Exception]:
    """Run a step for every region at once; collect failures instead of abandoning the other regions."""
    failures: dict[str, Exception] = {}
    if not regions:
        return failures
    with ThreadPoolExecutor(max_workers=min(workers, len(regions)), thread_name_prefix="region") as pool:
        futures = {region: pool.submit(step, region) for region in regions}
        for region, future in futures.items():
            try:
                future.result()
            except Exception as exc:
                failures[region] = exc
    return failures


def _raise_failures(what: str, failures: dict[str, Exception]) -> None:
    if failures:
        detail = "; ".join(f"{region}: {exc}" for region, exc in sorted(failures.items()))
        raise ArchamiError(f"{what} failed in {len(failures)} region(s) ({detail}); re-run to resume")


def load_build(build_dir: Path) -> tuple[Path, Manifest]:
    image, manifest_path = build_dir / IMAGE_NAME, build_dir / MANIFEST_NAME
    for path in (image, manifest_path):
        if not path.exists():
            raise ArchamiError(f"{build_dir}: no {path.name}; run `archami build` first")
    manifest = read_json(manifest_path, Manifest)
    if image.stat().st_size != manifest.image_size:
        raise ArchamiError(f"{image}: size {image.stat().st_size} differs from the manifest's {manifest.image_size}")
    return image, manifest


@as_archami_errors
def publish(
    build_dir: Path,
    *,
    regions: list[str] | None,
    public: bool,
    endpoint_url: str | None,
    state_path: Path | None = None,
    release_id: str | None = None,
    source_region: str | None = None,
    method: Method = "ebs-direct",
    encrypted: bool = False,
    kms_key_arn: str | None = None,
    bucket: str | None = None,
    ec2_certificate: Path | None = None,
    deprecate_after_days: int | None = 365,
    ssm_prefix: str = "/archami",
    workers: int = 8,
    poll: float = 2.0,
    clients: Clients | None = None,
    progress: UploadProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> PublishRecord:
    """Publish build_dir (image.raw + manifest.json) as one AMI per region; safe to re-run at any time."""
    verify_build(build_dir)  # image vs manifest vs audit, before any AWS call
    image, manifest = load_build(build_dir)
    release_id = release_id or default_release_id()
    clients = clients or Clients(AwsSettings(endpoint_url=endpoint_url))
    region_list = resolve_regions(clients, regions, source_region)
    name = ami_name(manifest.definition_name, manifest.variant_id, release_id)
    state_path = state_path or default_state_path(build_dir, release_id)
    fresh = PublishState(
        release_id=release_id,
        family=manifest.definition_name,
        variant_id=manifest.variant_id,
        ami_name=name,
        image_sha256=manifest.image_sha256,
        source_region=region_list[0],
        method="bundle" if manifest.variant.root_device == "instance-store" else method,
    )
    store = StateStore.open(state_path, fresh)
    if store.state.source_region != region_list[0]:
        raise ArchamiError(
            f"{state_path}: this publish started in {store.state.source_region}; pass --source-region "
            f"{store.state.source_region} (or list it first) to resume it"
        )
    ctx = PublishContext(
        build_dir=build_dir,
        image=image,
        manifest=manifest,
        release_id=release_id,
        ami_name=name,
        regions=region_list,
        clients=clients,
        store=store,
        public=public,
        method=method,
        encrypted=encrypted,
        kms_key_arn=kms_key_arn,
        bucket=bucket,
        ec2_certificate=ec2_certificate,
        deprecate_at=(datetime.now(UTC) + timedelta(days=deprecate_after_days)).replace(microsecond=0)
        if deprecate_after_days
        else None,
        ssm_prefix=ssm_prefix,
        workers=workers,
        poll=poll,
        progress=progress,
        log=log or (lambda line: None),
    )
    preflight(ctx)
    for region in region_list:
        store.ensure_region(region, source=region == ctx.source_region)

    if manifest.variant.root_device == "instance-store":
        location = source.ensure_bundle(ctx)
        source_ami = source.ensure_registered(ctx, snapshot_id=None, image_location=location)
    else:
        snapshot_id = source.ensure_snapshot(ctx)
        source_ami = source.ensure_registered(ctx, snapshot_id=snapshot_id, image_location=None)

    _raise_failures("copy", _parallel(region_list[1:], lambda r: replicate.ensure_copy(ctx, r, source_ami)))
    _raise_failures("expose", _parallel(region_list, lambda r: finalize.expose(ctx, r)))
    _raise_failures("sweep", _parallel(region_list, lambda r: finalize.sweep(ctx, r)))
    store.update(lambda s: setattr(s, "done", True))
    record = publish_record(store.state, manifest)
    write_json_atomic(build_dir / PUBLISH_RECORD_NAME.format(release_id=release_id), record)
    return record


def publish_record(state: PublishState, manifest: Manifest) -> PublishRecord:
    def region_image(r: RegionState) -> RegionImage:
        assert r.ami_id is not None
        snapshot = r.snapshot_id if r.source and r.snapshot_id else next(iter(r.ami_snapshot_ids), None)
        location = r.s3_object if r.source and state.method == "bundle" else None
        return RegionImage(
            region=r.region, ami_id=r.ami_id, snapshot_id=snapshot, image_location=location, public=r.public
        )

    return PublishRecord(
        variant_id=state.variant_id,
        ami_name=state.ami_name,
        image_sha256=manifest.image_sha256,
        regions={name: region_image(r) for name, r in state.regions.items() if r.ami_id},
    )
