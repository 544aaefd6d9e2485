"""Pure decisions of the release pipeline: which variants can be boot-tested here, and under which firmware."""

from __future__ import annotations

import re
from typing import Literal

from archami.config.spec import ImageSpec
from archami.config.variant import Variant

Firmware = Literal["bios", "uefi"]
# Guests archami's QEMU machines boot (vm/qemu.py MACHINES: q35, and virt with EDK2 for arm64 under TCG).
BOOTABLE_ARCHITECTURES = ("x86_64", "aarch64")


def boot_skip_reason(variant: Variant, skip_requested: bool = False) -> str | None:
    """Why this variant's boot test cannot (or should not) run on this host; None when it runs."""
    if skip_requested:
        return "skipped on request (--skip-boot)"
    if variant.virtualization == "paravirtual":
        return "paravirtual images need a Xen PV host (pv-grub); QEMU here boots hvm only"
    if variant.root_device == "instance-store":
        return "instance-store images boot from an S3 bundle on Xen; nothing here can boot one"
    if variant.architecture not in BOOTABLE_ARCHITECTURES:
        shown = " and ".join(BOOTABLE_ARCHITECTURES)
        return f"{variant.architecture} guests: the boot test runs {shown} guests under QEMU"
    return None


# EC2's GPU instance families (accelerated computing: p2...p6, g3...g6e, gr6); Inferentia, Trainium, Gaudi and
# FPGA families are not GPUs.
_GPU_FAMILY = re.compile(r"^(p\d+[a-z]*|g\d+[a-z]*|gr\d+[a-z]*)\.")
_GPU_PACKAGE = re.compile(r"(^|-)(nvidia|cuda)(-|$)")


def not_checked_here(spec: ImageSpec) -> list[str]:
    """What the image is for that a boot under QEMU here cannot exercise; the release records it beside a
    passed boot ("booted, GPU not tested"), never as a plain pass."""
    gpu = bool(spec.instance_type and _GPU_FAMILY.match(spec.instance_type)) or any(
        _GPU_PACKAGE.search(p) for p in spec.packages
    )
    return ["GPU"] if gpu else []


def firmwares_for(variant: Variant) -> list[Firmware]:
    """Every firmware the AMI may boot with on EC2: a uefi-preferred (hybrid) disk is tested under both."""
    mode = variant.boot_mode
    if mode == "uefi-preferred":
        return ["bios", "uefi"]
    if mode == "uefi":
        return ["uefi"]
    return ["bios"]


def parse_variant_list(values: list[str] | None) -> list[str]:
    """`--variant a --variant b,c` -> ['a', 'b', 'c'] (repeated or comma-separated, order kept)."""
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(out))
