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


def exclude_problems(definition: Definition) -> list[tuple[str, str]]:
    """Exclude rules may only name values the matrix has: a typo would silently exclude nothing."""
    m = definition.matrix
    values: dict[str, list[str]] = {
        "release": list(m.release or [definition.release]),
        "root_device": list(m.root_device),
        "virtualization": list(m.virtualization),
        "architecture": list(m.architecture or [definition.architecture]),
        "flavour": list(m.flavour),
        "kernel": list(m.kernel),
    }
    problems = []
    for i, rule in enumerate(m.exclude):
        for key, value in rule.model_dump(exclude_none=True).items():
            if value not in values[key]:
                where = f"matrix.{key}" if key in m.model_fields_set else f"the default {key}"
                problems.append((f"matrix.exclude[{i}].{key}",
                                 f"{value!r} is not in {where} ({', '.join(values[key])}): the rule would exclude "
                                 "nothing"))
    return problems


def expand_checked(definition: Definition) -> tuple[list[ImageSpec], list[tuple[str, str]]]:
    """Every variant of a definition as its resolved ImageSpec, in matrix order, and every problem of the
    matrix as (key, reason) — all of them, not just the first."""
    m = definition.matrix
    releases = m.release or [definition.release]
    arches = m.architecture or [definition.architecture]
    problems: list[tuple[str, str]] = []
    for i, flavour in enumerate(m.flavour):
        if flavour != "default" and flavour not in definition.flavours:
            problems.append((f"matrix.flavour[{i}]",
                             f"flavour {flavour!r} is not defined under [flavours.{flavour}]"))
    own_kernels = {arch: kernel_source(definition, arch) for arch in arches}
    if any(source == "kernel" for source in own_kernels.values()):  # some architecture uses [kernel]
        if "lts" in m.kernel and not definition.kernel.lts:
            problems.append(("matrix.kernel", "the 'lts' channel needs kernel.lts (the LTS kernel package)"))
        if "ec2" in m.kernel and not definition.kernel.ec2:
            problems.append(("matrix.kernel",
                             "the 'ec2' channel needs kernel.ec2 (linux-ec2: `archami kernel build`)"))
    for arch, source in own_kernels.items():
        for channel in m.kernel:
            if source != "kernel" and kernel_package(definition, arch, channel) is None:
                problems.append(("matrix.kernel", f"the {channel!r} channel needs {source}.{channel} (the "
                                 f"{channel.upper()} kernel package of {arch})"))
    problems += exclude_problems(definition)
    if problems:
        return [], problems

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
        impossible = [(p, r) for p, r in _IMPOSSIBLE if all(combo[k] == v for k, v in p.items())]
        if impossible:
            pattern, reason = impossible[0]
            message = f"impossible variant {' + '.join(pattern.values())}: {reason}; add it to matrix.exclude"
            if ("matrix", message) not in problems:
                problems.append(("matrix", message))
            continue
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
            problems.append(("matrix", f"two combinations make the same variant {variant.id!r} (a value twice?)"))
            continue
        seen.add(variant.id)
        specs.append(resolve(definition, variant))
    if not specs and not problems:
        problems.append(("matrix.exclude", "every combination is excluded: nothing to build"))
    return specs, problems


def expand(definition: Definition) -> list[ImageSpec]:
    """Every variant of a definition as its resolved ImageSpec, in matrix order. Raises MatrixError naming the
    offending key (the first problem; `expand_checked` returns them all)."""
    specs, problems = expand_checked(definition)
    if problems:
        raise MatrixError(*problems[0])
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
