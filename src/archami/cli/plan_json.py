"""`archami plan --json`: the variants of a definition, and the CI matrix made of those that can be released.

`matrix.include` has one entry per releasable variant with the fields in MATRIX_FIELDS (documented in the
README and `archami.1`, generated from this table): CI systems read it as their job matrix (GitHub Actions:
`strategy.matrix: ${{ fromJSON(...).matrix }}`; ci/ holds the shipped workflows). Field names are stable:
add fields, never rename them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archami.bootability import spec_problem
from archami.config.load import LoadedDefinition
from archami.config.spec import ImageSpec

MATRIX_FIELDS: dict[str, str] = {
    "id": "Variant id (RELEASE-ROOTDEVICE-VIRTUALIZATION-ARCH[-FLAVOUR][-KERNEL]): `archami build --variant ID`.",
    "distro": "The definition's distro: arch or debian.",
    "release": "The variant's release (rolling, trixie, ...).",
    "architecture": "x86_64 or aarch64: the image's CPU architecture.",
    "root_device": "ebs or instance-store.",
    "virtualization": "hvm or paravirtual.",
    "flavour": "The flavour's name, or default.",
    "kernel_channel": "stable, lts or ec2.",
    "firmwares": "Firmwares the boot test runs, in order (bios, uefi); empty when it cannot run.",
    "boot_testable": "Whether the variant can be boot-tested under QEMU on an x86_64 Linux machine like this one.",
    "runner_arch": "Host architecture that builds the variant natively, without qemu-user (x86_64 or aarch64); an "
                   "x86_64 runner also builds aarch64 variants, under qemu-user, as archami's own tests do.",
}


def tested_here(spec: ImageSpec) -> tuple[str, str | None]:
    """The boot test `archami release` runs for this variant on this machine, and why none or what it misses."""
    from archami.release.steps import boot_skip_reason, firmwares_for, not_checked_here

    reason = boot_skip_reason(spec.variant)
    if reason is not None:
        return "none", reason
    missing = not_checked_here(spec)
    note = f"{', '.join(missing)} not tested (QEMU here has none)" if missing else None
    return " + ".join(firmwares_for(spec.variant)) + (" (partial)" if missing else ""), note


def matrix_entry(spec: ImageSpec) -> dict[str, Any]:
    """The CI matrix entry of one variant: exactly the keys of MATRIX_FIELDS."""
    from archami.release.steps import boot_skip_reason, firmwares_for

    v = spec.variant
    testable = boot_skip_reason(v) is None
    entry: dict[str, Any] = {
        "id": v.id, "distro": v.distro, "release": v.release, "architecture": v.architecture,
        "root_device": v.root_device, "virtualization": v.virtualization, "flavour": v.flavour,
        "kernel_channel": v.kernel_channel, "firmwares": list(firmwares_for(v)) if testable else [],
        "boot_testable": testable, "runner_arch": v.architecture,
    }
    return entry


def plan_document(loaded: LoadedDefinition, file: Path) -> dict[str, Any]:
    rows = []
    for s in loaded.specs:
        tested, note = tested_here(s)
        refusal = spec_problem(s)
        rows.append({
            **matrix_entry(s), "label": s.variant.label, "boot_mode": s.variant.boot_mode, **s.variant.model_dump(),
            "publishable": refusal is None, "refusal": refusal, "boot_test": tested, "boot_test_note": note,
            "instance_type": s.instance_type, "flavour_description": s.flavour_description,
        })
    include = [matrix_entry(s) for s in loaded.specs if spec_problem(s) is None]
    return {"definition": str(file), "sha256": loaded.sha256, "variants": rows, "matrix": {"include": include}}
