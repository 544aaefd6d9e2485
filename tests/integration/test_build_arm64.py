"""Build the Debian example's Graviton variant (trixie-ebs-hvm-aarch64) on this x86_64 machine -- the image's
own maintainer scripts, update-initramfs and grub-mkimage run under qemu-user -- and inspect it read-only:
partition table (sfdisk --json), the arm64 GRUB on the ESP (mtools, its PE header), the root (debugfs), the
initramfs (zstd + cpio), manifest and audit."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest
from build_support import ARM64_VARIANT

from archami.artifacts import BuildResult
from archami.audit import audit_image
from archami.image.layout import ESP_TYPE, LINUX_ROOT_TYPES

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MB = 1000 * 1000
PE_MACHINE_ARM64 = 0xAA64
ELF_MACHINE_AARCH64 = 0xB7


def _part(build: BuildResult, role: str) -> int:
    return next(p.start for p in build.manifest.partitions if p.role == role)


def _debugfs(build: BuildResult, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, f"{build.image}?offset={_part(build, 'root')}"],
                          capture_output=True, text=True, check=True).stdout


def _dump(build: BuildResult, path: str, out: Path) -> bytes:
    _debugfs(build, f"dump {path} {out}")
    return out.read_bytes()


def _pe_machine(data: bytes) -> int:
    assert data[:2] == b"MZ"
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe:pe + 4] == b"PE\0\0"
    machine: int = struct.unpack_from("<H", data, pe + 4)[0]
    return machine


def test_manifest_is_an_arm64_uefi_image(arm64_build: BuildResult) -> None:
    m = arm64_build.manifest
    assert m.variant_id == ARM64_VARIANT and m.variant.ec2_architecture == "arm64"
    assert m.boot_mode == "uefi" and m.partition_scheme == "gpt"
    assert m.kernel_version.endswith("-cloud-arm64")
    arches = {p.name: p.architecture for p in m.packages}
    assert arches["linux-image-cloud-arm64"] == arches["openssh-server"] == arches["grub-efi-arm64-bin"] == "arm64"
    assert "linux-image-cloud-amd64" not in arches and not {a for a in arches.values()} - {"arm64", "all"}
    assert m.kernel_cmdline is not None
    consoles = [a for a in m.kernel_cmdline.split() if a.startswith("console=")]
    assert sorted(consoles) == ["console=ttyAMA0,115200", "console=ttyS0,115200"]  # no console=tty0 on arm64
    assert m.used_bytes <= 400 * MB, f"allocates {m.used_bytes / MB:.0f} MB"
    print(f"arm64 build: {m.build_seconds:.0f} s (root cache {'hit' if m.root_cache_hit else 'miss'}), "
          f"{m.used_bytes / MB:.0f} MB allocated of {m.image_size / MB:.0f} MB")


def test_partition_table_is_esp_and_arm64_root_without_bios_boot(arm64_build: BuildResult) -> None:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(arm64_build.image)], capture_output=True,
                                      check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    assert [p["type"].upper() for p in table["partitions"]] == [ESP_TYPE, LINUX_ROOT_TYPES["aarch64"]]
    with arm64_build.image.open("rb") as f:
        mbr = f.read(512)
    assert mbr[:0x1B8] == bytes(0x1B8)  # a protective MBR only: no BIOS boot code on a UEFI-only disk


def test_esp_carries_arm64_grub_at_the_removable_path(arm64_build: BuildResult, tmp_path: Path) -> None:
    spec = f"{arm64_build.image}@@{_part(arm64_build, 'esp')}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = subprocess.run(["mdir", "-b", "-i", spec, "::/EFI/BOOT"], capture_output=True, text=True,
                             check=True, env=env).stdout
    assert "BOOTAA64.EFI" in listing and "BOOTX64.EFI" not in listing
    subprocess.run(["mcopy", "-i", spec, "::/EFI/BOOT/BOOTAA64.EFI", str(tmp_path / "grub.efi")], check=True, env=env)
    assert _pe_machine((tmp_path / "grub.efi").read_bytes()) == PE_MACHINE_ARM64


def test_root_holds_arm64_programs_and_a_firmware_console_grub_cfg(arm64_build: BuildResult, tmp_path: Path) -> None:
    m = arm64_build.manifest
    bash = _dump(arm64_build, "/usr/bin/bash", tmp_path / "bash")
    assert bash[:4] == b"\x7fELF" and struct.unpack_from("<H", bash, 18)[0] == ELF_MACHINE_AARCH64
    grub_cfg = _debugfs(arm64_build, "cat /boot/grub/grub.cfg")
    assert f"linux /vmlinuz {m.kernel_cmdline}" in grub_cfg and "initrd /initrd.img" in grub_cfg
    assert "serial --unit" not in grub_cfg and "terminal_output console" in grub_cfg
    assert "command.lst" in _debugfs(arm64_build, "ls /boot/grub/arm64-efi")
    assert "/boot/efi\tvfat" in _debugfs(arm64_build, "cat /etc/fstab")


def _newc_names(data: bytes, offset: int) -> tuple[list[str], int]:
    """The file names of one newc cpio archive at `offset`, and where the archive ends."""
    names = []
    while True:
        assert data[offset:offset + 6] in (b"070701", b"070702"), f"no cpio header at {offset}"
        name_size, file_size = int(data[offset + 94:offset + 102], 16), int(data[offset + 54:offset + 62], 16)
        name = data[offset + 110:offset + 110 + name_size - 1].decode()
        offset = (offset + 110 + name_size + 3) & ~3
        offset = (offset + file_size + 3) & ~3
        if name == "TRAILER!!!":
            return names, offset
        names.append(name)


def _initramfs_names(initrd: bytes) -> list[str]:
    """initramfs-tools (trixie) writes the already-compressed modules as uncompressed cpio archives, then the
    rest as one compressed archive: every name in all of them."""
    names, offset = [], 0
    while initrd[offset:offset + 4] == b"0707":
        found, offset = _newc_names(initrd, offset)
        names += found
        while offset < len(initrd) and initrd[offset] == 0:
            offset += 1  # padding between archives
    if offset < len(initrd):
        assert initrd[offset:offset + 4] == b"\x28\xb5\x2f\xfd", "expected a zstd archive (COMPRESS=zstd)"
        rest = subprocess.run(["zstd", "-dc"], input=initrd[offset:], capture_output=True, check=True).stdout
        names += _newc_names(rest, 0)[0]
    return names


def test_initramfs_has_gravitons_nvme_and_ena_drivers(arm64_build: BuildResult, tmp_path: Path) -> None:
    m = arm64_build.manifest
    names = _initramfs_names(_dump(arm64_build, f"/boot/initrd.img-{m.kernel_version}", tmp_path / "initrd"))
    modules = {Path(n).name.split(".ko")[0] for n in names if ".ko" in n}
    config = _debugfs(arm64_build, f"cat /boot/config-{m.kernel_version}")
    # Each driver Graviton needs is in the initramfs, or built into the kernel (Debian's arm64 cloud kernel
    # builds NVMe in and ENA as a module).
    for module, option in (("nvme", "CONFIG_BLK_DEV_NVME"), ("ena", "CONFIG_ENA_ETHERNET")):
        assert module in modules or f"{option}=y\n" in config, f"{module}: neither in the initramfs nor built in"
    assert "ena" in modules, sorted(modules)
    assert any(n.endswith("/init") or n == "init" for n in names)  # the compressed main archive was read too


def test_audit_passes(arm64_build: BuildResult) -> None:
    report = audit_image(arm64_build.image)
    assert report.ok, report.findings
    assert json.loads((arm64_build.out_dir / "audit.json").read_text())["ok"] is True
