"""Write a raw disk image from a planned layout and an image root -- without mounts or loop devices.

    sfdisk        GPT from the layout's script (checked afterwards: sfdisk --json)
    mkfs.ext4 -d  the root filesystem, populated from the root directory, written at its offset
    mkfs.fat      the EFI partition at its offset, filled with mtools (the build host needs no vfat driver)
    grub-mkimage  x86: i386-pc core.img into the BIOS boot partition + patched boot.img in the MBR,
                  x86_64-efi EFI/BOOT/BOOTX64.EFI on the ESP; aarch64: arm64-efi EFI/BOOT/BOOTAA64.EFI only
                  (for an image of another architecture, the image's own grub-mkimage runs under qemu-user)
    The image file starts as a hole (truncate) and stays sparse: `used_bytes` counts allocated blocks only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from archami.errors import ArchamiError
from archami.hosttools import require
from archami.image import grub, reproducible
from archami.image.layout import SECTOR, DiskLayout, PlannedPartition
from archami.image.steps import grub_platform_dir
from archami.runner import run, run_in_root

# GRUB 2.06 (Debian bookworm's) cannot read ext4 with metadata_csum_seed; never enable it.
EXT4_FEATURES = "^metadata_csum_seed"


@dataclass(frozen=True)
class DiskReport:
    image_size: int
    used_bytes: int


def _write_at(image: Path, offset: int, data: bytes) -> None:
    fd = os.open(image, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _read_at(image: Path, offset: int, size: int) -> bytes:
    with image.open("rb") as f:
        f.seek(offset)
        return f.read(size)


def write_partition_table(image: Path, layout: DiskLayout, log: logging.Logger) -> None:
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "--wipe", "always", image], log,
        input_text=layout.sfdisk_script())
    # Some partitioning tools exit 0 having written nothing: read the table back and compare.
    table = json.loads(run(["sfdisk", "--json", image], log, capture=True))["partitiontable"]
    got = [(int(p["start"]), int(p["size"]), p["type"].upper()) for p in table.get("partitions", [])]
    want = [(p.start_sector, p.sectors, p.type_guid) for p in layout.partitions]
    if table.get("label") != "gpt" or got != want:
        raise ArchamiError(f"partition table check failed: wrote {want}, read back {got}")


def make_ext4(image: Path, part: PlannedPartition, root: Path, log: logging.Logger, epoch: int | None = None) -> None:
    """mkfs.ext4 -d from `root`. With `epoch` the filesystem is reproducible: mtimes clamped to it, mkfs's
    own clock set to it, and every inode's atime and ctime set to it afterwards (image/reproducible.py)."""
    assert part.fs_uuid is not None
    extended = [f"offset={part.start}"] + ([f"hash_seed={part.hash_seed}"] if part.hash_seed else [])
    if epoch is not None:
        log.info("file times: %d entries newer than %d clamped", reproducible.clamp_times(root, epoch), epoch)
    run(["mkfs.ext4", "-F", "-q", "-t", "ext4", "-O", EXT4_FEATURES, "-d", root, "-U", part.fs_uuid,
         "-L", part.fs_label or "root", "-E", ",".join(extended), image, f"{part.size // 1024}k"], log,
        env=reproducible.ext4_env(epoch))
    if epoch is not None:
        reproducible.fix_inode_times(f"{image}?offset={part.start}", epoch, log)


def make_esp(image: Path, part: PlannedPartition, log: logging.Logger) -> str:
    """FAT32 with 512-byte clusters (a small FAT32 otherwise runs out of clusters); returns the mtools
    image spec `image@@offset`."""
    assert part.fs_uuid is not None
    volume_id = part.fs_uuid.replace("-", "")
    # --invariant fixes mkfs.fat's time stamps; it also sets a constant volume id, so -i must come after it.
    run(["mkfs.fat", "-F", "32", "-s", "1", "-n", part.fs_label or "EFI", "--invariant", "-i", volume_id,
         "--offset", str(part.start_sector), "-h", str(part.start_sector), image, str(part.size // 1024)], log)
    return f"{image}@@{part.start}"


def _mtools_env(epoch: int | None = None) -> dict[str, str]:
    # mtools refuses some valid-but-unusual geometries unless told not to check; it dates what it writes
    # SOURCE_DATE_EPOCH when that is set.
    env = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}
    return env if epoch is None else {**env, reproducible.EPOCH_ENV: str(epoch)}


def build_core_images(
    root: Path, work: Path, root_fs_uuid: str, log: logging.Logger, architecture: str = "x86_64"
) -> dict[str, Path]:
    """grub-mkimage for each GRUB target of the architecture (platform -> core image): the image's own GRUB
    (run inside the root) when it has one, else the build host's."""
    early = grub.early_config(root_fs_uuid)
    outputs: dict[str, Path] = {}
    for target in grub.grub_targets(architecture):
        platform, name = target.platform, target.name
        moddir, own = grub_platform_dir(root, platform)
        out = work / name
        if own:
            inside = root / "var/tmp/archami-grub"
            inside.mkdir(parents=True, exist_ok=True)
            try:
                (inside / "early.cfg").write_text(early)
                run_in_root(root, ["grub-mkimage", "-O", platform, "-d", f"/usr/lib/grub/{platform}",
                                   "-c", "/var/tmp/archami-grub/early.cfg", "-p", "/boot/grub",
                                   "-o", f"/var/tmp/archami-grub/{name}", *target.modules], log)
                os.replace(inside / name, out)
            finally:
                for leftover in inside.iterdir():
                    leftover.unlink()
                inside.rmdir()
        else:
            require("grub-mkimage", f"grub {platform}")
            early_path = work / "early.cfg"
            early_path.write_text(early)
            run(["grub-mkimage", "-O", platform, "-d", moddir, "-c", early_path, "-p", "/boot/grub",
                 "-o", out, *target.modules], log)
        outputs[platform] = out
    return outputs


def install_bios_grub(image: Path, layout: DiskLayout, core_img: Path, boot_img: Path) -> None:
    bios = layout.part("bios")
    core = grub.patch_core_blocklist(core_img.read_bytes(), bios.start_sector, bios.sectors)
    _write_at(image, bios.start, core)
    mbr = _read_at(image, 0, SECTOR)
    _write_at(image, 0, grub.patch_boot_sector(boot_img.read_bytes(), mbr, bios.start_sector))


def install_efi_grub(
    esp_spec: str, efi_binary: Path, log: logging.Logger, epoch: int | None = None,
    efi_path: str = "EFI/BOOT/BOOTX64.EFI",
) -> None:
    env = _mtools_env(epoch)
    directories = [f"::/{'/'.join(efi_path.split('/')[:i])}" for i in range(1, efi_path.count("/") + 1)]
    run(["mmd", "-i", esp_spec, *directories], log, env=env)
    if epoch is not None:
        os.utime(efi_binary, (epoch, epoch))  # mcopy -m keeps the file's mtime
    run(["mcopy", "-m", "-i", esp_spec, efi_binary, f"::/{efi_path}"], log, env=env)


def assemble(
    image: Path, layout: DiskLayout, root: Path, work: Path, log: logging.Logger, epoch: int | None = None,
    architecture: str = "x86_64",
) -> DiskReport:
    """Write `image` (created sparse, replaced if present) from `layout` and the populated `root`; with
    `epoch` (SOURCE_DATE_EPOCH) every time stamp in it is derived from that, so equal inputs give equal bytes."""
    require("mkfs.ext4")
    image.unlink(missing_ok=True)
    with image.open("wb") as f:
        f.truncate(layout.disk_size)
    if layout.scheme == "gpt":
        require("sfdisk", "mkfs.fat", "mtools")
        write_partition_table(image, layout, log)
        assert layout.root.fs_uuid is not None
        targets = grub.grub_targets(architecture)
        if layout.has("bios") != any(not t.is_efi for t in targets):
            raise ArchamiError(f"the disk layout does not fit {architecture}'s GRUB targets (BIOS boot partition)")
        images = build_core_images(root, work, layout.root.fs_uuid, log, architecture)
        make_ext4(image, layout.root, root, log, epoch)
        esp_spec = make_esp(image, layout.part("esp"), log)
        for target in targets:
            if target.efi_path is not None:
                install_efi_grub(esp_spec, images[target.platform], log, epoch, target.efi_path)
            else:
                moddir, _own = grub_platform_dir(root, target.platform)
                install_bios_grub(image, layout, images[target.platform], moddir / "boot.img")
    else:
        make_ext4(image, layout.root, root, log, epoch)
    # The image is sparse by construction: created by truncate, then only what mkfs, mtools and GRUB
    # write is allocated. (`fallocate --dig-holes` over the result freed ~1 MB and cost 4-15 s here.)
    st = image.stat()
    return DiskReport(image_size=st.st_size, used_bytes=st.st_blocks * 512)
