"""GRUB for hvm disks (BIOS i386-pc and UEFI x86_64-efi; UEFI arm64-efi on aarch64) and menu.lst for pv-grub.

`grub-install`/`grub-bios-setup` need a block device (against an image file they fail "guessing the root
device"), so archami does their two jobs itself: `grub-mkimage` builds the core images, and the BIOS
boot sector is patched here by hand. The offsets come from GRUB's include/grub/i386/pc/boot.h and
util/setup.c; they have been stable since GRUB 1.98.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from archami.errors import ArchamiError
from archami.image.pvgrub import PARAVIRTUAL_BOOT, pv_grub_boot
from archami.safetext import matching, one_line

SECTOR = 512
# boot.img (the MBR code) fields, from grub/i386/pc/boot.h.
BPB_START = 0x03
BPB_END = 0x5A
KERNEL_SECTOR_OFFSET = 0x5C  # u64: first sector of core.img
BOOT_DRIVE_OFFSET = 0x64  # u8: 0xff = use the drive the BIOS booted from
DRIVE_CHECK_OFFSET = 0x66  # 2-byte jmp replaced by nops for hard disks (buggy BIOS workaround)
MBR_TABLE_START = 0x1B8  # disk signature + partition table + 0x55aa: kept from the existing MBR
# core.img's first sector (diskboot.img) ends with a blocklist {u64 start; u16 len; u16 segment}.
BLOCKLIST_OFFSET = SECTOR - 12

# Modules built into the core images, so nothing needs loading from the disk before grub.cfg runs.
COMMON_MODULES = [
    "part_gpt", "part_msdos", "ext2", "search", "search_fs_uuid", "search_label", "normal", "configfile",
    "linux", "echo", "test", "serial", "terminal", "sleep", "ls", "cat", "halt", "reboot", "loadenv",
]
PC_MODULES = ["biosdisk", *COMMON_MODULES]
EFI_MODULES = ["fat", "efi_gop", "efi_uga", *COMMON_MODULES]
ARM64_EFI_MODULES = ["fat", "efi_gop", *COMMON_MODULES]  # efi_uga is x86 only (a pre-GOP display protocol)


@dataclass(frozen=True)
class GrubTarget:
    """One GRUB core image an hvm disk carries: `platform` is GRUB's name (its module directory), `name` the
    output file; `efi_path` is where UEFI firmware looks on the ESP (the removable-media path: no boot entry
    in NVRAM is needed, and EC2 keeps none), None for the BIOS core.img."""

    platform: str
    modules: tuple[str, ...]
    name: str
    efi_path: str | None

    @property
    def is_efi(self) -> bool:
        return self.efi_path is not None


_PC = GrubTarget("i386-pc", tuple(PC_MODULES), "core.img", None)
_X64_EFI = GrubTarget("x86_64-efi", tuple(EFI_MODULES), "BOOTX64.EFI", "EFI/BOOT/BOOTX64.EFI")
_ARM64_EFI = GrubTarget("arm64-efi", tuple(ARM64_EFI_MODULES), "BOOTAA64.EFI", "EFI/BOOT/BOOTAA64.EFI")
_TARGETS = {"x86_64": (_PC, _X64_EFI), "i686": (_PC, _X64_EFI), "aarch64": (_ARM64_EFI,)}


def grub_targets(architecture: str) -> tuple[GrubTarget, ...]:
    """The core images of an hvm disk: x86 boots from BIOS or UEFI (uefi-preferred), aarch64 from UEFI only."""
    try:
        return _TARGETS[architecture]
    except KeyError:
        raise GrubError(f"no GRUB platform for architecture {architecture!r}") from None


class GrubError(ArchamiError):
    pass


# What may reach GRUB's (and pv-grub's) command lines unquoted: UUIDs, image paths, kernel arguments.
_UUID = re.compile(r"[A-Za-z0-9-]{1,64}")  # ext4 UUIDs, FAT volume ids
_BOOT_PATH = re.compile(r"/[A-Za-z0-9_.+/-]{1,250}")
_KERNEL_ARG = re.compile(r"[A-Za-z0-9_.,:=/+@%~^-]+")


def grub_quote(text: str) -> str:
    """`text` as one word of GRUB's shell-like script: single quotes keep everything literal except a single
    quote, which is written as '\\'' (close, escaped quote, reopen), as in sh."""
    return "'" + one_line(text, "GRUB menu title").replace("'", "'\\''") + "'"


def _cmdline(cmdline: str) -> str:
    return " ".join(matching(arg, _KERNEL_ARG, "kernel argument") for arg in cmdline.split())


def early_config(root_fs_uuid: str) -> str:
    """Embedded in both core images: find the root filesystem by UUID and read its grub.cfg."""
    return (
        f"search --no-floppy --fs-uuid --set=root {matching(root_fs_uuid, _UUID, 'filesystem UUID')}\n"
        "set prefix=($root)/boot/grub\n"
        "configfile $prefix/grub.cfg\n"
    )


@dataclass(frozen=True)
class BootFiles:
    kernel: str  # absolute path inside the image
    initrd: str | None


def find_boot_files(root: Path) -> BootFiles:
    """The kernel and initramfs to boot. Stable names first (Debian's /vmlinuz and /initrd.img symlinks,
    which the kernel package keeps pointing at the newest kernel; Arch's fixed /boot names), so kernel
    upgrades on an instance need no new grub.cfg."""
    # Arch Linux ARM's linux-aarch64 installs an uncompressed /boot/Image (its mkinitcpio preset's ALL_kver).
    for kernel, initrd in (("/vmlinuz", "/initrd.img"), ("/boot/vmlinuz-linux", "/boot/initramfs-linux.img"),
                           ("/boot/Image", "/boot/initramfs-linux.img")):
        if (root / kernel.lstrip("/")).exists():
            return BootFiles(kernel, initrd if (root / initrd.lstrip("/")).exists() else None)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise GrubError(f"no kernel in {root}/boot")
    suffix = kernels[-1].name.removeprefix("vmlinuz-")
    # Debian names the initramfs after the kernel version, Arch after the kernel package (linux-lts ...).
    for initrd_name in (f"initrd.img-{suffix}", f"initramfs-{suffix}.img"):
        if (root / "boot" / initrd_name).exists():
            return BootFiles(f"/boot/{kernels[-1].name}", f"/boot/{initrd_name}")
    return BootFiles(f"/boot/{kernels[-1].name}", None)


def _boot_files(boot: BootFiles) -> tuple[str, str | None]:
    kernel = matching(boot.kernel, _BOOT_PATH, "kernel path")
    return kernel, matching(boot.initrd, _BOOT_PATH, "initramfs path") if boot.initrd else None


def grub_cfg(
    title: str, boot: BootFiles, root_fs_uuid: str, cmdline: str, timeout: int = 0, *, serial: bool = True
) -> str:
    """/boot/grub/grub.cfg: one entry finding root by UUID. With `serial`, GRUB drives the PC serial port
    (COM1) itself beside the console; without (UEFI-only arm64), GRUB uses the firmware's console, which
    EC2's and QEMU's arm64 UEFI route to the serial port (there is no COM1 to drive there).
    No menu wait by default (as Debian's cloud images): the one entry boots at once, a second sooner; an
    instance that does not boot is mended by attaching its volume elsewhere, not at a menu."""
    kernel, initrd_path = _boot_files(boot)
    initrd = f"    initrd {initrd_path}\n" if initrd_path else ""
    terminals = (
        "serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n"
        if serial else "terminal_input console\nterminal_output console\n"
    )
    return (
        "# Written by archami. EC2 shows the serial console (get-console-output).\n"
        "set default=0\n"
        f"set timeout={int(timeout)}\n"
        f"{terminals}"
        f"menuentry {grub_quote(title)} --id archami {{\n"
        f"    search --no-floppy --fs-uuid --set=root {matching(root_fs_uuid, _UUID, 'filesystem UUID')}\n"
        f"    linux {kernel} {_cmdline(cmdline)}\n"
        f"{initrd}"
        "}\n"
    )


def menu_lst(title: str, boot: BootFiles, cmdline: str, scheme: str = PARAVIRTUAL_BOOT.scheme) -> str:
    """/boot/grub/menu.lst for pv-grub (GRUB legacy syntax), its root the device pv-grub reads for a disk of
    this partition scheme (image/pvgrub.py: (hd0) for archami's unpartitioned disk). GRUB legacy takes the
    rest of the `title` line as it is, so the title only has to be one line."""
    pv = pv_grub_boot(scheme)
    kernel, initrd_path = _boot_files(boot)
    initrd = f"initrd {initrd_path}\n" if initrd_path else ""
    return (
        f"# Written by archami for {pv.aki_name.rstrip('_*')} (partition scheme: {pv.scheme}).\n"
        "default 0\n"
        "timeout 1\n"
        f"title {one_line(title, 'pv-grub menu title').strip() or 'archami'}\n"
        f"root {pv.grub_root}\n"
        f"kernel {kernel} {_cmdline(cmdline)}\n"
        f"{initrd}"
    )


def patch_boot_sector(boot_img: bytes, existing_mbr: bytes, core_sector: int) -> bytes:
    """boot.img made ready for the disk, as grub-bios-setup does: keep the existing MBR's BPB area and
    partition table (the GPT protective entry), point at core.img, use the BIOS boot drive."""
    if len(boot_img) != SECTOR or len(existing_mbr) != SECTOR:
        raise GrubError("boot.img and the MBR must be 512 bytes")
    out = bytearray(boot_img)
    out[BPB_START:BPB_END] = existing_mbr[BPB_START:BPB_END]
    out[MBR_TABLE_START:SECTOR] = existing_mbr[MBR_TABLE_START:SECTOR]
    struct.pack_into("<Q", out, KERNEL_SECTOR_OFFSET, core_sector)
    out[BOOT_DRIVE_OFFSET] = 0xFF
    out[DRIVE_CHECK_OFFSET : DRIVE_CHECK_OFFSET + 2] = b"\x90\x90"
    if out[510:512] != b"\x55\xaa":
        raise GrubError("the existing MBR has no boot signature (is there a partition table?)")
    return bytes(out)


def patch_core_blocklist(core_img: bytes, core_sector: int, max_sectors: int) -> bytes:
    """Point diskboot.img's blocklist at the rest of core.img (it defaults to sector 2, i.e. core.img
    right after the MBR); core.img lives in the BIOS boot partition starting at `core_sector`."""
    sectors = -(-len(core_img) // SECTOR)
    if sectors > max_sectors:
        raise GrubError(f"core.img needs {sectors} sectors, the BIOS boot partition has {max_sectors}")
    out = bytearray(core_img)
    start, length, _segment = struct.unpack_from("<QHH", out, BLOCKLIST_OFFSET)
    if start != 2 or length != sectors - 1:
        raise GrubError(f"unexpected core.img blocklist (start={start}, len={length}): not an i386-pc core.img?")
    struct.pack_into("<Q", out, BLOCKLIST_OFFSET, core_sector + 1)
    return bytes(out)
