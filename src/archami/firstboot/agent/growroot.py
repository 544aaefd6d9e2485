"""Grow the root partition and its ext4 filesystem to fill the volume (users launch with bigger volumes).

The root block device is found from /proc/self/mountinfo and sysfs; the partition table is rewritten with
`sfdisk -N` (after moving the GPT backup header to the new end of the disk), the kernel is told the new
size with `partx -u` (BLKPG, works on a mounted disk) and `resize2fs` grows the mounted filesystem online.
A root filesystem on an unpartitioned volume (pv-grub "hd0" layouts) is grown by resize2fs alone.
"""

from __future__ import annotations

import os

from .files import log, read_text

SECTOR = 512
MIN_GROWTH = 2048 * SECTOR  # less than 1 MiB free is alignment slack, not a bigger volume
GPT_BACKUP_SECTORS = 33  # backup header + partition entries at the end of a GPT disk


class GrowPlan:
    __slots__ = ("disk", "fstype", "growth", "number", "partition")

    def __init__(self, disk: str, partition: str, number: int, growth: int, fstype: str) -> None:
        self.disk = disk  # e.g. "nvme0n1"
        self.partition = partition  # e.g. "nvme0n1p3"
        self.number = number
        self.growth = growth  # bytes that would be added
        self.fstype = fstype


def root_device(mountinfo: str) -> tuple[str, str] | None:
    """(major:minor, fstype) of the filesystem mounted on / (the last mount there wins, as in the kernel)."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[4] != "/":
            continue
        try:
            dash = fields.index("-", 6)
        except ValueError:
            continue
        found = (fields[2], fields[dash + 1])
    return found


def plan(mountinfo: str, sysfs: str = "/sys") -> GrowPlan | str:
    """What growing the root would do, or why it will not (not a partition, not the last one, no room)."""
    found = root_device(mountinfo)
    if found is None:
        return "no root filesystem in mountinfo"
    devno, fstype = found
    part_dir = os.path.realpath(os.path.join(sysfs, "dev/block", devno))
    number_text = read_text(os.path.join(part_dir, "partition"))
    if number_text is None:
        # An unpartitioned volume (pv-grub "hd0" layouts): only the filesystem grows, up to the device.
        disk_bytes = int((read_text(os.path.join(part_dir, "size")) or "0").strip()) * SECTOR
        name = os.path.basename(part_dir)
        return GrowPlan(name, name, 0, disk_bytes, fstype)
    disk_dir = os.path.dirname(part_dir)
    start = int((read_text(os.path.join(part_dir, "start")) or "0").strip())
    size = int((read_text(os.path.join(part_dir, "size")) or "0").strip())
    disk_size = int((read_text(os.path.join(disk_dir, "size")) or "0").strip())
    for entry in os.listdir(disk_dir):
        other_start = read_text(os.path.join(disk_dir, entry, "start"))
        if other_start is not None and entry != os.path.basename(part_dir) and int(other_start) > start:
            return f"root partition is not the last one ({entry} follows it)"
    free = (disk_size - GPT_BACKUP_SECTORS - (start + size)) * SECTOR
    if free < MIN_GROWTH:
        return "root already fills the volume"
    return GrowPlan(os.path.basename(disk_dir), os.path.basename(part_dir), int(number_text), free, fstype)


def grow_partition_table(disk: str, number: int) -> None:
    """Extend partition `number` of `disk` (a device or an image file) to the end of the disk."""
    import subprocess

    label = subprocess.run(["sfdisk", "--dump", disk], capture_output=True, text=True, check=True).stdout
    if "label: gpt" in label:
        # The backup GPT sits at the old end of the volume: move it to the real end first.
        subprocess.run(["sfdisk", "--quiet", "--relocate", "gpt-bak-std", disk], capture_output=True, check=True)
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "-N", str(number), disk],
        input=", +\n",
        capture_output=True,
        text=True,
        check=True,
    )


def ext4_size(device: str) -> int:
    """Bytes an ext4 filesystem spans, from its superblock (1024 bytes in; fields as in ext4's on-disk format)."""
    with open(device, "rb") as handle:
        handle.seek(1024)
        block = handle.read(1024)
    if len(block) < 0x154 or block[0x38:0x3A] != b"\x53\xef":
        raise ValueError(f"{device}: no ext4 superblock")
    count = int.from_bytes(block[4:8], "little")
    if int.from_bytes(block[0x60:0x64], "little") & 0x80:  # INCOMPAT_64BIT: the count has a high half
        count |= int.from_bytes(block[0x150:0x154], "little") << 32
    return count * (1024 << int.from_bytes(block[24:28], "little"))


def grow_root(mountinfo_path: str = "/proc/self/mountinfo", sysfs: str = "/sys") -> str:
    import subprocess

    result = plan(read_text(mountinfo_path) or "", sysfs)
    if isinstance(result, str):
        return f"nothing to do: {result}"
    if result.fstype != "ext4":
        return f"nothing to do: root is {result.fstype}, only ext4 is grown"
    if result.number == 0:
        device = f"/dev/{result.disk}"
        growth = result.growth - ext4_size(device)
        if growth < MIN_GROWTH:
            return "nothing to do: root already fills the volume"
        subprocess.run(["resize2fs", device], capture_output=True, check=True)
        return f"{device} (unpartitioned) grown by {growth // 2**20} MiB"
    disk, part = f"/dev/{result.disk}", f"/dev/{result.partition}"
    log(f"growing {part} by {result.growth // 2**20} MiB")
    grow_partition_table(disk, result.number)
    subprocess.run(["partx", "-u", "--nr", str(result.number), disk], capture_output=True, check=True)
    subprocess.run(["resize2fs", part], capture_output=True, check=True)
    return f"{part} grown by {result.growth // 2**20} MiB"
