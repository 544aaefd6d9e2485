"""Growing root: finding the root partition from mountinfo + sysfs, and extending a real GPT with sfdisk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from archami.firstboot.agent.growroot import GrowPlan, ext4_size, grow_partition_table, plan, root_device

MOUNTINFO = """22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
28 1 259:3 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p3 rw
30 28 259:2 / /boot/efi rw,relatime shared:2 - vfat /dev/nvme0n1p2 rw
"""
MIB = 2048  # sectors


def fake_sysfs(tmp_path: Path, disk_sectors: int, parts: dict[int, tuple[int, int]]) -> str:
    """A sysfs tree as the kernel lays it out for an NVMe disk: /sys/dev/block/M:m -> the partition dir."""
    sysfs = tmp_path / "sys"
    disk = sysfs / "devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1"
    disk.mkdir(parents=True)
    (disk / "size").write_text(f"{disk_sectors}\n")
    (disk / "queue").mkdir()  # a non-partition entry beside them, as in the real tree
    (sysfs / "dev/block").mkdir(parents=True)
    os.symlink(os.path.relpath(disk, sysfs / "dev/block"), sysfs / "dev/block/259:0")
    for number, (start, size) in parts.items():
        part = disk / f"nvme0n1p{number}"
        part.mkdir()
        (part / "partition").write_text(f"{number}\n")
        (part / "start").write_text(f"{start}\n")
        (part / "size").write_text(f"{size}\n")
        os.symlink(os.path.relpath(part, sysfs / "dev/block"), sysfs / f"dev/block/259:{number}")
    return str(sysfs)


def test_root_device_from_mountinfo() -> None:
    assert root_device(MOUNTINFO) == ("259:3", "ext4")
    assert root_device("") is None


def test_plan_grows_last_partition(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, 8192 * MIB, {1: (2048, MIB), 2: (2 * MIB, 64 * MIB), 3: (66 * MIB, 1980 * MIB)})
    result = plan(MOUNTINFO, sysfs)
    assert isinstance(result, GrowPlan)
    assert (result.disk, result.partition, result.number, result.fstype) == ("nvme0n1", "nvme0n1p3", 3, "ext4")
    assert result.growth == (8192 * MIB - 33 - 2046 * MIB) * 512


def test_plan_full_disk(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, 2048 * MIB, {3: (66 * MIB, 2048 * MIB - 66 * MIB - 33)})
    assert plan(MOUNTINFO, sysfs) == "root already fills the volume"


def test_plan_not_last_partition(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, 8192 * MIB, {3: (66 * MIB, 100 * MIB), 4: (200 * MIB, 100 * MIB)})
    assert plan(MOUNTINFO, sysfs) == "root partition is not the last one (nvme0n1p4 follows it)"


def test_plan_whole_disk_root(tmp_path: Path) -> None:
    """pv-grub 'hd0' volumes carry the filesystem without a partition table: only the filesystem grows."""
    sysfs = fake_sysfs(tmp_path, 8192 * MIB, {})
    result = plan(MOUNTINFO.replace("259:3", "259:0"), sysfs)
    assert isinstance(result, GrowPlan)
    assert (result.disk, result.number, result.growth) == ("nvme0n1", 0, 8192 * MIB * 512)


@pytest.mark.parametrize("options", [[], ["-O", "^64bit"], ["-b", "1024"]])
def test_ext4_size_from_the_superblock(tmp_path: Path, options: list[str]) -> None:
    image = tmp_path / "fs.img"
    with image.open("wb") as handle:
        handle.truncate(64 * 2**20)
    subprocess.run(["mkfs.ext4", "-q", "-F", *options, str(image), "40M"], check=True)
    assert ext4_size(str(image)) == 40 * 2**20


def test_ext4_size_refuses_other_data(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(ValueError, match="no ext4 superblock"):
        ext4_size(str(junk))


def sfdisk_json(image: Path) -> dict[str, object]:
    out = subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True, check=True).stdout
    table: dict[str, object] = json.loads(out)["partitiontable"]
    return table


def test_grow_partition_table_on_a_gpt_image(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    with image.open("wb") as handle:
        handle.truncate(64 * 2**20)
    layout = "label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\nstart=4096, size=40960\n"
    subprocess.run(["sfdisk", "--quiet", str(image)], input=layout, text=True, check=True)
    with image.open("r+b") as handle:
        handle.truncate(256 * 2**20)  # the volume launched bigger than the image

    grow_partition_table(str(image), 2)

    table = sfdisk_json(image)
    partitions = table["partitions"]
    assert isinstance(partitions, list)
    root = partitions[1]
    assert root["start"] == 4096  # the start never moves: the filesystem stays where it is
    assert root["start"] + root["size"] >= 256 * MIB - 33 - MIB  # within alignment of the new end
    assert table["lastlba"] == 256 * MIB - 34  # backup GPT moved to the real end
    verify = subprocess.run(["sfdisk", "--verify", str(image)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_grow_partition_table_on_an_mbr_image(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    with image.open("wb") as handle:
        handle.truncate(32 * 2**20)
    subprocess.run(["sfdisk", "--quiet", str(image)], input="label: dos\nstart=2048, size=20480\n", text=True,
                   check=True)
    with image.open("r+b") as handle:
        handle.truncate(128 * 2**20)
    grow_partition_table(str(image), 1)
    partitions = sfdisk_json(image)["partitions"]
    assert isinstance(partitions, list)
    assert partitions[0]["start"] + partitions[0]["size"] == 128 * MIB
