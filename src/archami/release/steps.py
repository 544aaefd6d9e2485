"""Pure decisions of the release pipeline: which variants can be boot-tested here, and under which firmware."""

from __future__ import annotations

from typing import Literal

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
