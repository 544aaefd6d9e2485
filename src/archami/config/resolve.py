"""Resolve one variant of a definition into its ImageSpec: the definition's settings with the flavour's
overrides and the matrix's choices applied. Pure: no I/O.

The variant's [architectures.<arch>] settings apply first (kernel package, packages, mirrors), then the
flavour's. Override rules (one for each kind of setting, so a flavour can change any image setting):
- lists (packages, services, files, kernel.cmdline, kernel.initramfs_modules) add to the definition's;
  a flavour's file with the same path replaces the definition's;
- tables (ssh, network, firstboot, disk) replace only the keys the flavour sets;
- plain values (hostname, timezone, locale, kernel.package) replace.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from archami.config.schema import (
    Architecture,
    ArchitectureKernel,
    ArchitectureSettings,
    Definition,
    FileSpec,
    Flavour,
    Kernel,
)
from archami.config.spec import ImageSpec, KernelSpec, ServicePlan
from archami.config.variant import Variant

M = TypeVar("M", bound=BaseModel)


def _merge_table(base: M, override: M | None) -> M:
    """`base` with the keys the flavour wrote (pydantic records which were set) taken from `override`."""
    if override is None:
        return base
    return base.model_copy(update={key: getattr(override, key) for key in override.model_fields_set})


def _unique(*lists: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for items in lists for item in items))


def _files(base: list[FileSpec], extra: list[FileSpec]) -> tuple[FileSpec, ...]:
    replaced = {spec.path for spec in extra}
    return (*(spec for spec in base if spec.path not in replaced), *extra)


def kernel_source(definition: Definition, architecture: Architecture) -> str:
    """Where an architecture's kernel packages are set: its own [architectures.<arch>] kernel when that names
    one (then the definition's, built for another architecture, never apply), else the definition's."""
    settings = definition.architectures.get(architecture)
    if settings is not None and (settings.kernel.stable or settings.kernel.lts or settings.kernel.ec2):
        return f"architectures.{architecture}.kernel"
    return "kernel"


def kernel_package(definition: Definition, architecture: Architecture, channel: str) -> str | None:
    """The kernel package of a channel (stable, lts, ec2) on an architecture (None: the definition names none)."""
    settings = definition.architectures.get(architecture)
    own = settings is not None and kernel_source(definition, architecture) != "kernel"
    chosen: ArchitectureKernel | Kernel = settings.kernel if own and settings is not None else definition.kernel
    package: str | None = getattr(chosen, channel)
    return package


def resolve(definition: Definition, variant: Variant) -> ImageSpec:
    """The ImageSpec of `variant` (whose flavour and kernel channel the matrix has already checked)."""
    flavour = definition.flavours[variant.flavour] if variant.flavour != "default" else Flavour()
    arch = definition.architectures.get(variant.architecture) or ArchitectureSettings()
    base_added = set(definition.packages.add) | set(arch.packages.add)
    base_removed = (set(definition.packages.remove) | set(arch.packages.remove)) - set(arch.packages.add)
    added = base_added | set(flavour.packages.add)
    removed = (base_removed | set(flavour.packages.remove)) - set(flavour.packages.add)
    kernel_package = flavour.kernel.package or variant.kernel_package
    services = ServicePlan(
        enabled=_unique(definition.services.enable, flavour.services.enable),
        disabled=_unique(definition.services.disable, flavour.services.disable),
        deferred=_unique(definition.services.deferred, flavour.services.deferred),
    )
    return ImageSpec(
        variant=variant.model_copy(update={"kernel_package": kernel_package}),
        description=definition.description,
        flavour_description=flavour.description,
        instance_type=flavour.instance_type,
        hostname=flavour.hostname or definition.hostname,
        timezone=flavour.timezone or definition.timezone,
        locale=flavour.locale or definition.locale,
        kernel=KernelSpec(
            package=kernel_package,
            cmdline=_unique(definition.kernel.cmdline, arch.kernel.cmdline, flavour.kernel.cmdline),
            initramfs_modules=_unique(
                definition.kernel.initramfs_modules, arch.kernel.initramfs_modules, flavour.kernel.initramfs_modules
            ),
        ),
        packages=tuple(sorted((added - removed) | {kernel_package})),
        removed=tuple(sorted(removed)),
        services=services,
        files=_files(definition.files, flavour.files),
        ssh=_merge_table(definition.ssh, flavour.ssh),
        network=_merge_table(definition.network, flavour.network),
        firstboot=_merge_table(definition.firstboot, flavour.firstboot),
        disk=_merge_table(definition.disk, flavour.disk),
        repositories=tuple(definition.repositories),
        mirrors=tuple(arch.mirrors or definition.mirrors),
    )
