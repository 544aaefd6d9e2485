"""Expand a definition's variant matrix into Variants. Pure: no I/O."""

from __future__ import annotations

import itertools
from typing import Protocol, TypeVar

from archami.config.resolve import kernel_package, kernel_source, resolve
from archami.config.schema import Definition, Exclude
from archami.config.spec import ImageSpec
from archami.config.variant import Variant
from archami.errors import ArchamiError

# Combinations EC2 cannot run, with the reason shown to the user.
_IMPOSSIBLE: list[tuple[dict[str, str], str]] = [
    ({"virtualization": "paravirtual", "architecture": "aarch64"}, "EC2 has no paravirtual arm64 instances"),
    ({"root_device": "instance-store", "architecture": "aarch64"}, "EC2 has no instance-store arm64 AMIs"),
]


class MatrixError(ArchamiError):
    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(reason)


def _excluded(combo: dict[str, str], excludes: list[Exclude]) -> bool:
    for rule in excludes:
        wanted = {k: v for k, v in rule.model_dump().items() if v is not None}
        if wanted and all(combo.get(k) == v for k, v in wanted.items()):
            return True
    return False


def expand(definition: Definition) -> list[ImageSpec]:
    """Every variant of a definition as its resolved ImageSpec, in matrix order. Raises MatrixError naming the
    offending key."""
    m = definition.matrix
    releases = m.release or [definition.release]
    arches = m.architecture or [definition.architecture]
    for flavour in m.flavour:
        if flavour != "default" and flavour not in definition.flavours:
            raise MatrixError("matrix.flavour", f"flavour {flavour!r} is not defined under [flavours.{flavour}]")
    for arch in arches:
        for channel in m.kernel:
            if kernel_package(definition, arch, channel) is None:
                where = f"{kernel_source(definition, arch)}.{channel}"
                raise MatrixError("matrix.kernel", f"the {channel!r} channel needs {where} (the {channel.upper()} "
                                  f"kernel package{'' if where.startswith('kernel') else ' of ' + arch})")
    for i, rule in enumerate(m.exclude):
        if rule.flavour and rule.flavour != "default" and rule.flavour not in definition.flavours:
            raise MatrixError(f"matrix.exclude[{i}].flavour", f"unknown flavour {rule.flavour!r}")

    specs: list[ImageSpec] = []
    seen: set[str] = set()
    for release, root, virt, arch, flavour, channel in itertools.product(
        releases, m.root_device, m.virtualization, arches, m.flavour, m.kernel
    ):
        combo = {
            "distro": definition.distro,
            "release": release,
            "root_device": root,
            "virtualization": virt,
            "architecture": arch,
            "flavour": flavour,
            "kernel": channel,
        }
        if _excluded(combo, m.exclude):
            continue
        for pattern, reason in _IMPOSSIBLE:
            if all(combo[k] == v for k, v in pattern.items()):
                shown = " + ".join(pattern.values())
                raise MatrixError("matrix", f"impossible variant {shown}: {reason}; add it to matrix.exclude")
        package = kernel_package(definition, arch, channel)
        assert package is not None  # checked above
        variant = Variant(
            name=definition.name,
            distro=definition.distro,
            release=release,
            root_device=root,
            virtualization=virt,
            architecture=arch,
            flavour=flavour,
            kernel_channel=channel,
            kernel_package=package,
        )
        if variant.id in seen:
            raise MatrixError("matrix", f"two combinations make the same variant {variant.id!r} (a value twice?)")
        seen.add(variant.id)
        specs.append(resolve(definition, variant))
    if not specs:
        raise MatrixError("matrix.exclude", "every combination is excluded: nothing to build")
    return specs


class HasId(Protocol):
    @property
    def id(self) -> str: ...


V = TypeVar("V", bound=HasId)


def select(variants: list[V], wanted: str | None) -> list[V]:
    """Variants whose id equals `wanted` (or all when None); a clear error lists the valid ids."""
    if wanted is None:
        return variants
    chosen = [v for v in variants if v.id == wanted]
    if not chosen:
        raise MatrixError("--variant", f"no variant {wanted!r}; choose one of: {', '.join(v.id for v in variants)}")
    return chosen
