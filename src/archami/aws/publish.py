"""Publish one built variant to many regions: upload, register, copy, expose, sweep — resumable.

    before:         preflight: Block Public Access, public AMI quota, pv-grub kernels per region
    source region:  snapshot (EBS direct, or S3 + ImportSnapshot) or S3 bundle  ->  RegisterImage
    other regions:  CopyImage (in parallel)
    every region:   launch permissions, deprecation time, SSM parameter, sweep of leftovers

Where and how come from one PublishSettings (config/publish.py): the definition's [publish] table with
the command's flags applied.

Every created resource is written to the state file the moment its id is known, and tagged with
archami:release / archami:variant at creation, so a re-run after any failure adopts or deletes it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from archami.artifacts import (
    IMAGE_NAME,
    MANIFEST_NAME,
    Manifest,
    PublishRecord,
    RegionImage,
    read_json,
    write_json_atomic,
)
from archami.aws import distribute, source
from archami.aws.clients import AwsSettings, Clients, resolve_regions
from archami.aws.context import PublishContext, UploadProgress
from archami.aws.distribute import BPA_NOT_IMPLEMENTED, BPA_UNBLOCKED, block_public_access_state, public_ami_headroom
from archami.aws.errors import as_archami_errors, one_line
from archami.aws.images import find_pv_grub_aki
from archami.aws.state import PublishState, RegionState, StateStore
from archami.bootability import manifest_problem
from archami.config.publish import PublishSettings
from archami.errors import ArchamiError
from archami.image.integrity import verify_build

T = TypeVar("T")

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
        detail = "; ".join(f"{region}: {one_line(exc)}" for region, exc in sorted(failures.items()))
        raise ArchamiError(f"{what} failed in {len(failures)} region(s) ({detail}); re-run to resume")


def load_build(build_dir: Path) -> tuple[Path, Manifest]:
    image, manifest_path = build_dir / IMAGE_NAME, build_dir / MANIFEST_NAME
    for path in (image, manifest_path):
        if not path.exists():
            raise ArchamiError(f"{build_dir}: no {path.name}; run `archami build` first")
    try:
        manifest = read_json(manifest_path, Manifest)
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or not a manifest (pydantic)
        raise ArchamiError(f"{manifest_path}: unreadable manifest ({str(exc).splitlines()[0]})") from None
    if image.stat().st_size != manifest.image_size:
        raise ArchamiError(f"{image}: size {image.stat().st_size} differs from the manifest's {manifest.image_size}")
    return image, manifest


@as_archami_errors
def publish(
    build_dir: Path,
    settings: PublishSettings,
    *,
    endpoint_url: str | None = None,
    state_path: Path | None = None,
    release_id: str | None = None,
    workers: int = 8,
    poll: float = 2.0,
    clients: Clients | None = None,
    progress: UploadProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> PublishRecord:
    """Publish build_dir (image.raw + manifest.json) as one AMI per region; safe to re-run at any time."""
    verify_build(build_dir)  # image vs manifest vs audit, before any AWS call
    image, manifest = load_build(build_dir)
    problem = manifest_problem(manifest)  # e.g. a paravirtual kernel pv-grub cannot load: it would never boot
    if problem:
        raise ArchamiError(f"{manifest.variant_id} is not published: {problem}")
    settings.check_can_publish(manifest.variant.root_device)
    release_id = release_id or default_release_id()
    clients = clients or Clients(AwsSettings(endpoint_url=endpoint_url))
    region_list = resolve_regions(clients, settings.regions, settings.source_region)
    name = ami_name(manifest.definition_name, manifest.variant_id, release_id)
    state_path = state_path or default_state_path(build_dir, release_id)
    fresh = PublishState(
        release_id=release_id,
        family=manifest.definition_name,
        variant_id=manifest.variant_id,
        ami_name=name,
        image_sha256=manifest.image_sha256,
        source_region=region_list[0],
        method="bundle" if manifest.variant.root_device == "instance-store" else settings.method,
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
        settings=settings,
        deprecate_at=settings.deprecation_time(datetime.now(UTC)),
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

    _raise_failures("copy", _parallel(region_list[1:], lambda r: distribute.ensure_copy(ctx, r, source_ami)))
    _raise_failures("expose", _parallel(region_list, lambda r: distribute.expose(ctx, r)))
    _raise_failures("sweep", _parallel(region_list, lambda r: distribute.sweep(ctx, r)))
    store.update(lambda s: setattr(s, "done", True))
    record = publish_record(store.state, manifest)
    write_json_atomic(build_dir / PUBLISH_RECORD_NAME.format(release_id=release_id), record)
    return record


def publish_record(state: PublishState, manifest: Manifest) -> PublishRecord:
    def region_image(r: RegionState) -> RegionImage:
        assert r.ami_id is not None
        bundle = state.method == "bundle"  # instance-store AMIs (and their copies) have no snapshot
        snapshot = r.snapshot_id if r.source and r.snapshot_id else next(iter(r.ami_snapshot_ids), None)
        snapshot, location = (None, r.s3_object if r.source else None) if bundle else (snapshot, None)
        return RegionImage(
            region=r.region, ami_id=r.ami_id, snapshot_id=snapshot, image_location=location, public=r.public
        )

    return PublishRecord(
        variant_id=state.variant_id,
        ami_name=state.ami_name,
        image_sha256=manifest.image_sha256,
        regions={name: region_image(r) for name, r in state.regions.items() if r.ami_id},
    )


# Checks that can refuse a whole publish, before anything is created


def _per_region(ctx: PublishContext, check: Callable[[str], T]) -> dict[str, T]:
    with ThreadPoolExecutor(max_workers=min(8, len(ctx.regions))) as pool:
        return dict(zip(ctx.regions, pool.map(check, ctx.regions), strict=True))


def _check_block_public_access(ctx: PublishContext) -> None:
    states = _per_region(ctx, lambda r: block_public_access_state(ctx.clients.ec2(r, max_attempts=1)))
    blocked = sorted(r for r, s in states.items() if s not in (BPA_UNBLOCKED, BPA_NOT_IMPLEMENTED))
    if blocked:
        raise ArchamiError(
            f"image Block Public Access is on in {', '.join(blocked)}: public AMIs would be refused there. "
            "Disable it (ec2 disable-image-block-public-access) or publish without --public"
        )
    unknown = sorted(r for r, s in states.items() if s == BPA_NOT_IMPLEMENTED)
    if unknown:
        ctx.log(
            f"Block Public Access state not implemented by this endpoint in {', '.join(unknown)}: "
            "not checked (an emulator); continuing"
        )
    for region, value in states.items():
        ctx.store.ensure_region(region, source=region == ctx.source_region)
        ctx.store.update_region(region, lambda r, v=value: setattr(r, "block_public_access", v))  # type: ignore[misc]


def _check_public_quota(ctx: PublishContext) -> None:
    already_public = {r for r, st in ctx.store.state.regions.items() if st.public}
    headroom = _per_region(
        ctx, lambda r: public_ami_headroom(ctx.clients.ec2(r), ctx.clients.service_quotas(r, max_attempts=1))
    )
    full = sorted(r for r, h in headroom.items() if h is not None and h < 1 and r not in already_public)
    if full:
        raise ArchamiError(
            f"the public AMI quota is used up in {', '.join(full)}: make older AMIs private, `archami prune`, "
            "or ask for a higher 'Public AMIs' quota"
        )
    if any(h is None for h in headroom.values()):
        ctx.log("public AMI quota not readable from this endpoint: not checked")


def _find_kernels(ctx: PublishContext) -> None:
    architecture = ctx.manifest.variant.ec2_architecture
    missing: list[str] = []
    for region in ctx.regions:
        try:
            ctx.kernel_ids[region] = find_pv_grub_aki(
                ctx.clients.ec2(region), region, architecture, scheme=ctx.manifest.partition_scheme
            )
        except ArchamiError:
            missing.append(region)
    if missing:
        raise ArchamiError(
            f"no Amazon pv-grub kernel (AKI) for {architecture} in {', '.join(missing)}: "
            f"paravirtual {ctx.manifest.variant.id} cannot be published there; leave those regions out"
        )


def preflight(ctx: PublishContext) -> None:
    """What can refuse the whole publish, checked before anything is created (the settings are valid)."""
    if ctx.settings.public:
        _check_block_public_access(ctx)
        _check_public_quota(ctx)
    if ctx.manifest.variant.virtualization == "paravirtual":
        _find_kernels(ctx)
