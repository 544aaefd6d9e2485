"""GRUB: boot sector and core.img patching against the real GRUB images, config text, boot file lookup."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from archami.image import grub

PC_DIR = Path("/usr/lib/grub/i386-pc")


def _protective_mbr() -> bytes:
    mbr = bytearray(512)
    mbr[0x1B8:0x1BC] = b"\x12\x34\x56\x78"  # disk signature
    mbr[0x1BE:0x1CE] = bytes([0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 0xFF, 0xFF, 0x3F, 0])
    mbr[0x3:0x5A] = b"B" * (0x5A - 0x3)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def test_boot_sector_keeps_the_partition_table_and_points_at_core() -> None:
    boot_img = (PC_DIR / "boot.img").read_bytes()
    mbr = _protective_mbr()
    patched = grub.patch_boot_sector(boot_img, mbr, core_sector=2048)
    assert len(patched) == 512
    assert patched[0x1B8:512] == mbr[0x1B8:512]  # signature, GPT protective entry, 55aa
    assert patched[0x3:0x5A] == mbr[0x3:0x5A]
    assert struct.unpack_from("<Q", patched, 0x5C)[0] == 2048
    assert patched[0x64] == 0xFF
    assert patched[0x66:0x68] == b"\x90\x90"
    # The GRUB code itself is boot.img's.
    assert patched[0x68:0x1B8] == boot_img[0x68:0x1B8]


def test_boot_sector_refuses_a_disk_without_a_table() -> None:
    with pytest.raises(grub.GrubError, match="boot signature"):
        grub.patch_boot_sector((PC_DIR / "boot.img").read_bytes(), bytes(512), 2048)


@pytest.fixture(scope="module")
def core_img(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("grub") / "core.img"
    subprocess.run(
        ["grub-mkimage", "-O", "i386-pc", "-d", str(PC_DIR), "-p", "/boot/grub", "-o", str(out), *grub.PC_MODULES],
        check=True,
    )
    return out.read_bytes()


def test_core_blocklist_points_after_its_first_sector(core_img: bytes) -> None:
    patched = grub.patch_core_blocklist(core_img, core_sector=2048, max_sectors=2048)
    start, length, segment = struct.unpack_from("<QHH", patched, 512 - 12)
    assert start == 2049
    assert length == -(-len(core_img) // 512) - 1
    assert segment == 0x820
    assert patched[: 512 - 12] == core_img[: 512 - 12] and patched[512:] == core_img[512:]


def test_core_img_must_fit_the_bios_boot_partition(core_img: bytes) -> None:
    with pytest.raises(grub.GrubError, match="BIOS boot partition"):
        grub.patch_core_blocklist(core_img, 2048, max_sectors=8)


def test_core_blocklist_rejects_a_non_core_image() -> None:
    with pytest.raises(grub.GrubError, match="blocklist"):
        grub.patch_core_blocklist(bytes(4096), 2048, 2048)


def test_grub_cfg_boots_by_uuid_on_serial_and_console() -> None:
    text = grub.grub_cfg("Debian", grub.BootFiles("/vmlinuz", "/initrd.img"), "abcd-1234", "root=UUID=abcd-1234 ro")
    assert "serial --unit=0 --speed=115200" in text
    assert "terminal_output serial console" in text
    assert "search --no-floppy --fs-uuid --set=root abcd-1234" in text
    assert "linux /vmlinuz root=UUID=abcd-1234 ro\n" in text
    assert "initrd /initrd.img\n" in text
    assert "initrd" not in grub.grub_cfg("x", grub.BootFiles("/vmlinuz", None), "u", "ro")


def test_early_config_finds_the_root_filesystem() -> None:
    assert grub.early_config("u-1").splitlines() == [
        "search --no-floppy --fs-uuid --set=root u-1",
        "set prefix=($root)/boot/grub",
        "configfile $prefix/grub.cfg",
    ]


def test_menu_lst_is_for_an_unpartitioned_disk() -> None:
    boot = grub.BootFiles("/boot/vmlinuz-linux", "/boot/initramfs-linux.img")
    text = grub.menu_lst("Arch", boot, "root=UUID=u ro", "none")
    assert "root (hd0)\n" in text
    assert "kernel /boot/vmlinuz-linux root=UUID=u ro\n" in text
    assert "initrd /boot/initramfs-linux.img\n" in text


def test_boot_files_prefer_stable_names(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.1.0-1-cloud-amd64").write_bytes(b"k")
    (tmp_path / "boot/initrd.img-6.1.0-1-cloud-amd64").write_bytes(b"i")
    assert grub.find_boot_files(tmp_path) == grub.BootFiles(
        "/boot/vmlinuz-6.1.0-1-cloud-amd64", "/boot/initrd.img-6.1.0-1-cloud-amd64"
    )
    (tmp_path / "vmlinuz").symlink_to("boot/vmlinuz-6.1.0-1-cloud-amd64")
    (tmp_path / "initrd.img").symlink_to("boot/initrd.img-6.1.0-1-cloud-amd64")
    assert grub.find_boot_files(tmp_path) == grub.BootFiles("/vmlinuz", "/initrd.img")


def test_boot_files_arch_names(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-linux").write_bytes(b"k")
    (tmp_path / "boot/initramfs-linux.img").write_bytes(b"i")
    assert grub.find_boot_files(tmp_path) == grub.BootFiles("/boot/vmlinuz-linux", "/boot/initramfs-linux.img")


def test_boot_files_arch_lts_kernel(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-linux-lts").write_bytes(b"k")
    (tmp_path / "boot/initramfs-linux-lts.img").write_bytes(b"i")
    (tmp_path / "boot/initramfs-linux-lts-fallback.img").write_bytes(b"f")
    assert grub.find_boot_files(tmp_path) == grub.BootFiles(
        "/boot/vmlinuz-linux-lts", "/boot/initramfs-linux-lts.img"
    )


def test_no_kernel_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    with pytest.raises(grub.GrubError, match="no kernel"):
        grub.find_boot_files(tmp_path)


def test_x86_disks_carry_bios_and_uefi_grub_and_arm64_disks_uefi_only() -> None:
    x86 = grub.grub_targets("x86_64")
    assert [(t.platform, t.efi_path) for t in x86] == [("i386-pc", None), ("x86_64-efi", "EFI/BOOT/BOOTX64.EFI")]
    (arm,) = grub.grub_targets("aarch64")
    assert (arm.platform, arm.efi_path, arm.is_efi) == ("arm64-efi", "EFI/BOOT/BOOTAA64.EFI", True)
    assert "efi_uga" not in arm.modules and {"fat", "part_gpt", "ext2", "linux"} <= set(arm.modules)
    with pytest.raises(grub.GrubError, match="riscv64"):
        grub.grub_targets("riscv64")


def test_grub_modules_exist_for_every_platform_the_host_has() -> None:
    # grub-mkimage refuses a module its platform lacks; check every target against the installed module lists.
    checked = 0
    for architecture in ("x86_64", "aarch64"):
        for target in grub.grub_targets(architecture):
            moddir = Path("/usr/lib/grub") / target.platform
            if not (moddir / "moddep.lst").exists():
                continue  # arm64-efi modules exist only on arm64 hosts (the build uses the image's own there)
            known = {line.split(":")[0] for line in (moddir / "moddep.lst").read_text().splitlines()}
            assert set(target.modules) <= known, target.platform
            checked += 1
    assert checked >= 2


def test_grub_cfg_without_a_pc_serial_port_uses_the_firmware_console() -> None:
    text = grub.grub_cfg("Debian", grub.BootFiles("/vmlinuz", "/initrd.img"), "u", "ro", serial=False)
    assert "serial" not in text.replace("serial console (get-console-output)", "")
    assert "terminal_output console\n" in text and "terminal_input console\n" in text
    assert "linux /vmlinuz ro\n" in text


def test_boot_files_arch_linux_arm_image(tmp_path: Path) -> None:
    # linux-aarch64 installs an uncompressed arm64 Image (its mkinitcpio preset's ALL_kver), not vmlinuz-*.
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/Image").write_bytes(b"k")
    (tmp_path / "boot/initramfs-linux.img").write_bytes(b"i")
    assert grub.find_boot_files(tmp_path) == grub.BootFiles("/boot/Image", "/boot/initramfs-linux.img")
