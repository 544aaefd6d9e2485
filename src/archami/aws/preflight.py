"""Checks that can refuse a whole publish, made before anything is created: public + encrypted, image
Block Public Access and the public AMI quota per region, and a pv-grub kernel in every region for
paravirtual variants. What cannot be checked (an emulator without the API) is reported as such."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from archami.aws.aki import find_pv_grub_aki
from archami.aws.context import PublishContext
from archami.aws.expose import BPA_NOT_IMPLEMENTED, BPA_UNBLOCKED, block_public_access_state, public_ami_headroom
from archami.errors import ArchamiError

T = TypeVar("T")


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
            ctx.kernel_ids[region] = find_pv_grub_aki(ctx.clients.ec2(region), region, architecture)
        except ArchamiError:
            missing.append(region)
    if missing:
        raise ArchamiError(
            f"no Amazon pv-grub kernel (AKI) for {architecture} in {', '.join(missing)}: "
            f"paravirtual {ctx.manifest.variant.id} cannot be published there; leave those regions out"
        )


def preflight(ctx: PublishContext) -> None:
    if ctx.public and ctx.encrypted:
        raise ArchamiError("encrypted AMIs cannot be made public: drop --public or --encrypted")
    if ctx.public:
        _check_block_public_access(ctx)
        _check_public_quota(ctx)
    if ctx.manifest.variant.virtualization == "paravirtual":
        _find_kernels(ctx)
