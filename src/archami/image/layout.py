"""Disk layout planning. PURE: sizes, offsets, UUIDs and the sfdisk script, no I/O.

hvm (x86_64): GPT with three partitions, in disk order so the root partition is last and can grow
into a larger EBS volume at first boot:

    1  BIOS boot   1 MiB  GRUB i386-pc core.img (boot.img in the protective MBR points at it)
    2  EFI system  esp    FAT32, EFI/BOOT/BOOTX64.EFI (GRUB x86_64-efi)
    3  root        rest   ext4, label "root"; GRUB finds it by filesystem UUID

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
    disk_size: int, *, virtualization: Literal["hvm", "paravirtual"], esp_size: int, seed: str
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
    bios = PlannedPartition("bios", 1, MIB, MIB, BIOS_BOOT_TYPE, _uuid(seed, "bios-part"), None, None)
    esp = PlannedPartition(
        "esp", 2, 2 * MIB, esp_size, ESP_TYPE, _uuid(seed, "esp-part"), fat_volume_id(seed), "EFI"
    )
    root_start = esp.start + esp.size
    root_size = disk_size - root_start - _TAIL
    if root_size < 256 * MIB:
        raise LayoutError(f"disk size {disk_size} leaves only {root_size // MIB} MiB for the root filesystem")
    root = PlannedPartition(
        "root", 3, root_start, root_size, LINUX_ROOT_X86_64_TYPE, _uuid(seed, "root-part"),
        _uuid(seed, "root-fs"), "root", _uuid(seed, "root-hash-seed"),
    )
    return DiskLayout("gpt", disk_size, _uuid(seed, "disk"), (bios, esp, root))


def kernel_cmdline(layout: DiskLayout, extra: list[str], virtualization: str) -> str:
    """root= by filesystem UUID, then the definition's arguments, with the serial console guaranteed.

    EC2's console output (get-console-output) reads ttyS0 on hvm and hvc0 on paravirtual, so the matching
    console= is appended when the definition lacks it; the last console= becomes /dev/console.
    """
    args = [f"root=UUID={layout.root.fs_uuid}", "ro"]
    args += [a for a in extra if not a.startswith("root=") and a not in ("ro", "rw")]
    console = "hvc0" if virtualization == "paravirtual" else "ttyS0"
    if not any(a.split(",")[0] == f"console={console}" for a in args):
        args.append(f"console={console}" + (",115200" if console == "ttyS0" else ""))
    return " ".join(args)
