"""Disk layout planning: pure, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archami.image.layout import (
    BIOS_BOOT_TYPE,
    ESP_TYPE,
    LINUX_ROOT_TYPES,
    LINUX_ROOT_X86_64_TYPE,
    MIB,
    LayoutError,
    kernel_cmdline,
    plan_layout,
)

GIB = 1024 * MIB


def test_hvm_layout_is_bios_esp_root_with_root_last() -> None:
    layout = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s")
    assert layout.scheme == "gpt"
    assert [(p.role, p.number, p.start, p.size) for p in layout.partitions] == [
        ("bios", 1, MIB, MIB),
        ("esp", 2, 2 * MIB, 64 * MIB),
        ("root", 3, 66 * MIB, 2 * GIB - 66 * MIB - MIB),
    ]
    assert [p.type_guid for p in layout.partitions] == [BIOS_BOOT_TYPE, ESP_TYPE, LINUX_ROOT_X86_64_TYPE]
    assert layout.root.fs_label == "root"
    assert layout.part("esp").fs_uuid is not None and len(layout.part("esp").fs_uuid or "") == 9


def test_uuids_are_deterministic_per_seed_and_distinct() -> None:
    a = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="def/variant")
    b = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="def/variant")
    c = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="def/other")
    assert a == b
    assert a.root.fs_uuid != c.root.fs_uuid and a.disk_uuid != c.disk_uuid
    ids = [a.disk_uuid] + [p.part_uuid for p in a.partitions] + [a.root.fs_uuid]
    assert len(set(ids)) == len(ids)


def test_sfdisk_script_names_every_partition_in_sectors() -> None:
    layout = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s")
    script = layout.sfdisk_script()
    assert script.startswith("label: gpt\n")
    assert f"label-id: {layout.disk_uuid}" in script
    lines = [line for line in script.splitlines() if line.startswith("start=")]
    assert lines[0] == f"start=2048, size=2048, type={BIOS_BOOT_TYPE}, uuid={layout.part('bios').part_uuid}, name=bios"
    assert lines[2].startswith(f"start={66 * 2048}, size={(2 * GIB - 67 * MIB) // 512}, type={LINUX_ROOT_X86_64_TYPE}")


def test_paravirtual_is_an_unpartitioned_filesystem_for_pv_grub_hd0() -> None:
    layout = plan_layout(2 * GIB, virtualization="paravirtual", esp_size=64 * MIB, seed="s")
    assert layout.scheme == "none"
    assert [(p.role, p.number, p.start, p.size) for p in layout.partitions] == [("root", 0, 0, 2 * GIB)]
    assert not layout.has("esp") and not layout.has("bios")
    with pytest.raises(LayoutError):
        layout.sfdisk_script()


@pytest.mark.parametrize(
    ("size", "esp", "message"),
    [
        (2 * GIB + 1, 64 * MIB, "whole number of MiB"),
        (2 * GIB, 16 * MIB, "at least 33MiB"),
        (300 * MIB, 64 * MIB, "leaves only"),
    ],
)
def test_impossible_layouts_are_refused(size: int, esp: int, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        plan_layout(size, virtualization="hvm", esp_size=esp, seed="s")


@given(
    size_mib=st.integers(min_value=512, max_value=64 * 1024),
    esp_mib=st.integers(min_value=33, max_value=512),
)
def test_partitions_are_aligned_ordered_and_inside_the_disk(size_mib: int, esp_mib: int) -> None:
    try:
        layout = plan_layout(size_mib * MIB, virtualization="hvm", esp_size=esp_mib * MIB, seed="p")
    except LayoutError:
        assert size_mib - esp_mib - 3 < 256
        return
    end = 0
    for part in layout.partitions:
        assert part.start % MIB == 0 and part.size % MIB == 0
        assert part.start >= max(end, MIB)  # no overlap; the primary GPT fits in the first MiB
        end = part.start + part.size
    assert end <= size_mib * MIB - 33 * 512  # room for the backup GPT
    assert layout.partitions[-1].role == "root"


def test_cmdline_finds_root_by_uuid_and_adds_the_serial_console() -> None:
    layout = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s")
    line = kernel_cmdline(layout, ["console=tty0", "net.ifnames=0", "root=/dev/sda1", "rw"], "hvm")
    assert line == f"root=UUID={layout.root.fs_uuid} ro console=tty0 net.ifnames=0 console=ttyS0,115200"
    # Already present: not duplicated.
    line = kernel_cmdline(layout, ["console=ttyS0,115200"], "hvm")
    assert line.count("console=ttyS0") == 1


def test_paravirtual_cmdline_uses_the_xen_console() -> None:
    layout = plan_layout(2 * GIB, virtualization="paravirtual", esp_size=64 * MIB, seed="s")
    assert kernel_cmdline(layout, [], "paravirtual").endswith("console=hvc0")


def test_aarch64_layout_is_esp_then_root_with_the_arm64_root_type() -> None:
    # EC2's arm64 instances boot UEFI only: no BIOS boot partition, the ESP starts at the first MiB.
    layout = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s", architecture="aarch64")
    assert [(p.role, p.number, p.start, p.size) for p in layout.partitions] == [
        ("esp", 1, MIB, 64 * MIB),
        ("root", 2, 65 * MIB, 2 * GIB - 65 * MIB - MIB),
    ]
    # The Discoverable Partitions Specification's "Root Partition (64-bit ARM/AArch64)".
    assert layout.root.type_guid == LINUX_ROOT_TYPES["aarch64"] == "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
    assert layout.part("esp").type_guid == ESP_TYPE and not layout.has("bios")
    lines = [line for line in layout.sfdisk_script().splitlines() if line.startswith("start=")]
    assert len(lines) == 2 and lines[0].startswith(f"start=2048, size={64 * 2048}, type={ESP_TYPE},")
    assert lines[1].endswith("name=root") and f"type={LINUX_ROOT_TYPES['aarch64']}" in lines[1]


def test_each_architecture_gets_its_own_root_type_and_the_same_identifiers() -> None:
    x86 = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s")
    arm = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s", architecture="aarch64")
    assert x86.root.type_guid == LINUX_ROOT_X86_64_TYPE != arm.root.type_guid
    assert (x86.root.fs_uuid, x86.part("esp").fs_uuid) == (arm.root.fs_uuid, arm.part("esp").fs_uuid)
    with pytest.raises(LayoutError, match="architecture"):
        plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s", architecture="riscv64")


def test_aarch64_cmdline_lists_qemus_pl011_and_gravitons_uart_and_drops_the_virtual_terminal() -> None:
    layout = plan_layout(2 * GIB, virtualization="hvm", esp_size=64 * MIB, seed="s", architecture="aarch64")
    line = kernel_cmdline(layout, ["console=tty0", "console=ttyS0,115200", "quiet"], "hvm", "aarch64")
    assert line == f"root=UUID={layout.root.fs_uuid} ro console=ttyS0,115200 quiet console=ttyAMA0,115200"
    consoles = [a for a in kernel_cmdline(layout, [], "hvm", "aarch64").split() if a.startswith("console=")]
    assert consoles == ["console=ttyAMA0,115200", "console=ttyS0,115200"]
