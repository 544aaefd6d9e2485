"""Disk layout planning. PURE: sizes, offsets, UUIDs and the sfdisk script, no I/O.

hvm (x86_64, i686): GPT with three partitions, in disk order so the root partition is last and can grow
into a larger EBS volume at first boot:

    1  BIOS boot   1 MiB  GRUB i386-pc core.img (boot.img in the protective MBR points at it)
    2  EFI system  esp    FAT32, EFI/BOOT/BOOTX64.EFI (GRUB x86_64-efi)
    3  root        rest   ext4, label "root"; GRUB finds it by filesystem UUID

hvm (aarch64): EC2's arm64 instances boot UEFI only, so there is no BIOS boot partition:

    1  EFI system  esp    FAT32, EFI/BOOT/BOOTAA64.EFI (GRUB arm64-efi)
    2  root        rest   ext4 as above, with the aarch64 root partition type

The root partition carries the Discoverable Partitions type of its architecture, so tools that look for
"the root partition of this machine" (systemd-gpt-auto-generator, systemd-repart, systemd-dissect) find it.

paravirtual: pv-grub reads /boot/grub/menu.lst from the device given by the AKI it is started with.
The layout is pvgrub.PARAVIRTUAL_BOOT's (the table the menu.lst and the AKI choice read too): NO partition
table, the ext4 filesystem is the whole disk (EC2 attaches it as /dev/sda1 = /dev/xvda1), booted by the
pv-grub-hd0_* kernels. That keeps growing the root trivial (resize2fs only, nothing to repartition) and
matches how EC2's own paravirtual AMIs were laid out.

UUIDs (and the ext4 directory hash seed) are derived from a seed (definition hash + variant id) so a
rebuild of the same inputs gives the same identifiers; they are recorded in the manifest.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Literal

from archami.errors import ArchamiError
from archami.image.pvgrub import PARAVIRTUAL_BOOT

SECTOR = 512
MIB = 1024 * 1024
# The GPT backup header and table take the last 33 sectors; keep the last MiB free for alignment.
_TAIL = MIB

BIOS_BOOT_TYPE = "21686148-6449-6E6F-744E-656564454649"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC3B8"
LINUX_ROOT_X86_64_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
# The Discoverable Partitions Specification's root partition type per architecture (archami's names).
LINUX_ROOT_TYPES = {
    "x86_64": LINUX_ROOT_X86_64_TYPE,
    "i686": "44479540-F297-41B2-9AF7-D131D5F0458A",
    "aarch64": "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
}
# Architectures whose EC2 instances may boot from BIOS (and so get a BIOS boot partition and i386-pc GRUB).
BIOS_ARCHITECTURES = frozenset({"x86_64", "i686"})

# Namespace for archami's deterministic UUIDs (uuid5); any fixed UUID works, this one is ours.
_NAMESPACE = uuid.UUID("6c1f3a52-8d1e-4c8a-9a8e-2b7b0f3c7a11")

Role = Literal["bios", "esp", "root"]


class LayoutError(ArchamiError):
    pass


@dataclass(frozen=True)
class PlannedPartition:
    role: Role
    number: int  # 0 when there is no partition table (the filesystem is the whole disk)
    start: int  # bytes from the start of the disk
    size: int  # bytes
    type_guid: str | None
    part_uuid: str | None  # GPT partition UUID
    fs_uuid: str | None  # ext4 UUID, or the FAT volume id as XXXX-XXXX
    fs_label: str | None
    hash_seed: str | None = None  # ext4 directory hash seed (random unless given: fixed for reproducible images)

    @property
    def start_sector(self) -> int:
        return self.start // SECTOR

    @property
    def sectors(self) -> int:
        return self.size // SECTOR


@dataclass(frozen=True)
class DiskLayout:
    scheme: Literal["gpt", "none"]
    disk_size: int
    disk_uuid: str | None
    partitions: tuple[PlannedPartition, ...]

    def part(self, role: Role) -> PlannedPartition:
        for p in self.partitions:
            if p.role == role:
                return p
        raise KeyError(role)

    def has(self, role: Role) -> bool:
        return any(p.role == role for p in self.partitions)

    @property
    def root(self) -> PlannedPartition:
        return self.part("root")

    def sfdisk_script(self) -> str:
        """Input for `sfdisk IMAGE` (only for partitioned layouts)."""
        if self.scheme != "gpt":
            raise LayoutError("this layout has no partition table")
        lines = [
            "label: gpt",
            f"label-id: {self.disk_uuid}",
            "unit: sectors",
            "sector-size: 512",
            f"first-lba: {MIB // SECTOR}",
            "",
        ]
        for p in self.partitions:
            lines.append(
                f"start={p.start_sector}, size={p.sectors}, type={p.type_guid}, uuid={p.part_uuid}, name={p.role}"
            )
        return "\n".join(lines) + "\n"


def _uuid(seed: str, what: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{seed}/{what}"))


def fat_volume_id(seed: str) -> str:
    """A FAT volume id (32 bits) shown as XXXX-XXXX, as blkid and fstab spell it."""
    digest = hashlib.sha256(f"{seed}/esp".encode()).hexdigest()[:8].upper()
    return f"{digest[:4]}-{digest[4:]}"


def plan_layout(
    disk_size: int,
    *,
    virtualization: Literal["hvm", "paravirtual"],
    esp_size: int,
    seed: str,
    architecture: str = "x86_64",
) -> DiskLayout:
    """The layout for a disk of `disk_size` bytes. Raises LayoutError when it cannot fit."""
    if disk_size % MIB:
        raise LayoutError(f"disk size {disk_size} is not a whole number of MiB")
    if virtualization == "paravirtual":
        if PARAVIRTUAL_BOOT.scheme != "none":  # the only pv-grub layout planned here: the whole-disk filesystem
            raise LayoutError(f"no paravirtual layout for a {PARAVIRTUAL_BOOT.scheme!r} partition table")
        root = PlannedPartition("root", 0, 0, disk_size, None, None, _uuid(seed, "root-fs"), "root",
                                _uuid(seed, "root-hash-seed"))
        return DiskLayout("none", disk_size, None, (root,))

    if esp_size % MIB or esp_size < 33 * MIB:
        # FAT32 needs at least 65525 clusters; with 512-byte clusters that is ~33 MiB.
        raise LayoutError(f"EFI partition size {esp_size} must be a whole number of MiB, at least 33MiB")
    if architecture not in LINUX_ROOT_TYPES:
        raise LayoutError(f"no root partition type for architecture {architecture!r}")
    first: list[PlannedPartition] = []
    if architecture in BIOS_ARCHITECTURES:
        first.append(PlannedPartition("bios", 1, MIB, MIB, BIOS_BOOT_TYPE, _uuid(seed, "bios-part"), None, None))
    esp_start = first[-1].start + first[-1].size if first else MIB
    esp = PlannedPartition(
        "esp", len(first) + 1, esp_start, esp_size, ESP_TYPE, _uuid(seed, "esp-part"), fat_volume_id(seed), "EFI"
    )
    root_start = esp.start + esp.size
    root_size = disk_size - root_start - _TAIL
    if root_size < 256 * MIB:
        raise LayoutError(f"disk size {disk_size} leaves only {root_size // MIB} MiB for the root filesystem")
    root = PlannedPartition(
        "root", esp.number + 1, root_start, root_size, LINUX_ROOT_TYPES[architecture], _uuid(seed, "root-part"),
        _uuid(seed, "root-fs"), "root", _uuid(seed, "root-hash-seed"),
    )
    return DiskLayout("gpt", disk_size, _uuid(seed, "disk"), (*first, esp, root))


# The serial consoles guaranteed on the kernel command line, in order (the last one that exists becomes
# /dev/console). EC2's get-console-output reads ttyS0 on hvm x86 and hvc0 (Xen) on paravirtual. Graviton's
# serial port is a 16550-compatible UART (ttyS0, found through ACPI SPCR), while QEMU's virt machine, where
# archami boot-tests aarch64, has a PL011 (ttyAMA0): both are listed. Each platform has exactly one of
# them, and with no virtual terminal listed (see kernel_cmdline) that one becomes /dev/console.
_SERIAL_CONSOLES = {
    ("hvm", "x86_64"): ("ttyS0,115200",),
    ("hvm", "i686"): ("ttyS0,115200",),
    ("hvm", "aarch64"): ("ttyAMA0,115200", "ttyS0,115200"),
}


def serial_consoles(virtualization: str, architecture: str) -> tuple[str, ...]:
    if virtualization == "paravirtual":
        return ("hvc0",)
    return _SERIAL_CONSOLES.get((virtualization, architecture), ("ttyS0,115200",))


def kernel_cmdline(layout: DiskLayout, extra: list[str], virtualization: str, architecture: str = "x86_64") -> str:
    """root= by filesystem UUID, then the definition's arguments, with the serial consoles guaranteed.

    Each serial console of `serial_consoles` is appended when the definition lacks it. On aarch64 the
    definition's console=tty0 is left out: EC2's arm64 instances have no display, and a virtual terminal,
    registered before any serial driver, would take /dev/console (systemd's messages, emergency shells)
    wherever the serial port named last does not exist -- e.g. ttyS0 under QEMU.
    """
    args = [f"root=UUID={layout.root.fs_uuid}", "ro"]
    args += [a for a in extra if not a.startswith("root=") and a not in ("ro", "rw")]
    if architecture == "aarch64":
        args = [a for a in args if a.split(",")[0] != "console=tty0"]
    for console in serial_consoles(virtualization, architecture):
        device = console.split(",")[0]
        if not any(a.split(",")[0] == f"console={device}" for a in args):
            args.append(f"console={console}")
    return " ".join(args)
