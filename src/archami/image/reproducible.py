"""Bit-for-bit reproducible images: one SOURCE_DATE_EPOCH per build, and every time stamp the image
carries tied to it.

Two builds of one definition from one package set differed (found by building twice and comparing,
`archami build --check-reproducible`) in exactly these places, each fixed here or where it is made:

- ext4 superblock and inode times (mkfs time; ctime and atime copied from the build tree, which the build
  itself touched): mkfs runs with E2FSPROGS_FAKE_TIME, file mtimes are clamped to the epoch beforehand,
  and atime/ctime of every used inode are set to the epoch afterwards (debugfs; ctime cannot be set from
  user space on the build tree, and reading a directory moves its atime);
- the ext4 directory hash seed (random): `-E hash_seed=` from the layout's seed;
- FAT times and volume id: `mkfs.fat --invariant`, mtools with SOURCE_DATE_EPOCH (image/disk.py);
- the agent's Python bytecode (source mtimes): checked-hash .pyc files (firstboot/install.py);
- the initramfs: Debian's mkinitramfs and Arch's mkinitcpio honour SOURCE_DATE_EPOCH (distro/).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

from archami.config.reproducible import Reproducible
from archami.config.spec import ImageSpec
from archami.distro.package_dates import newest_package_date
from archami.errors import ArchamiError
from archami.runner import run_bytes

EPOCH_ENV = "SOURCE_DATE_EPOCH"
FAKE_TIME_ENV = "E2FSPROGS_FAKE_TIME"  # libext2fs's "now" (mkfs time, lost+found, reserved inodes)


# Emptied by the build (image/steps.py remove_secrets): their mtime says only whether a tool used them in
# this build (mkinitramfs does unless its output is reused), so it is always the epoch.
SCRATCH_DIRS = ("tmp", "var/tmp")


def clamp_times(root: Path, epoch: int) -> int:
    """Set every mtime newer than `epoch` (files the build wrote) to `epoch`, symlinks included, without
    following them. Older mtimes (from the packages) stay. Returns how many entries were changed."""
    limit = epoch * 1_000_000_000
    changed = 0
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if info.st_mtime_ns > limit:
                os.utime(path, ns=(limit, limit), follow_symlinks=False)
                changed += 1
    for fixed in (root, *(root / name for name in SCRATCH_DIRS)):
        if fixed.is_dir() and not fixed.is_symlink() and os.lstat(fixed).st_mtime_ns != limit:
            os.utime(fixed, ns=(limit, limit))
            changed += 1
    return changed


_GROUP = re.compile(r"^Group (\d+):")
_FREE = re.compile(r"^\s+Free inodes:\s*(.*)$")


def used_inodes(dumpe2fs_output: str) -> list[int]:
    """The inode numbers in use, from `dumpe2fs` output (every inode of a group minus its free list). Pure."""
    per_group = 0
    for line in dumpe2fs_output.splitlines():
        if line.startswith("Inodes per group:"):
            per_group = int(line.split(":", 1)[1])
            break
    if per_group <= 0:
        raise ArchamiError("dumpe2fs printed no 'Inodes per group'")
    used: list[int] = []
    group: int | None = None
    for line in dumpe2fs_output.splitlines():
        match = _GROUP.match(line)
        if match:
            group = int(match.group(1))
            continue
        free_match = _FREE.match(line)
        if free_match is None or group is None:
            continue
        first, last = group * per_group + 1, (group + 1) * per_group
        free: set[int] = set()
        for item in filter(None, (part.strip() for part in free_match.group(1).split(","))):
            low, _, high = item.partition("-")
            free.update(range(int(low), int(high or low) + 1))
        used += [n for n in range(first, last + 1) if n not in free]
        group = None
    return used


def inode_time_commands(inodes: list[int], epoch: int) -> list[str]:
    """debugfs commands giving each inode atime = ctime = epoch (whole seconds). Pure."""
    commands = []
    for number in inodes:
        for field in ("atime", "ctime"):
            commands.append(f"sif <{number}> {field} @{epoch}")
            commands.append(f"sif <{number}> {field}_extra 0")
    return commands


def fix_inode_times(device: str, epoch: int, log: logging.Logger) -> int:
    """Give every used inode of the ext4 filesystem at `device` (`image?offset=N`) atime = ctime = epoch.
    mkfs.ext4 -d copies both from the build tree, where no one can set ctime. Returns the inode count."""
    env = {FAKE_TIME_ENV: str(epoch)}
    listing = run_bytes(["dumpe2fs", device], env=env)
    if listing.returncode != 0:
        raise ArchamiError(f"dumpe2fs {device} failed: {listing.stderr.decode(errors='replace').strip()}")
    inodes = used_inodes(listing.stdout.decode(errors="replace"))
    with tempfile.NamedTemporaryFile("w", prefix="archami-times-", suffix=".debugfs") as script:
        script.write("\n".join(inode_time_commands(inodes, epoch)) + "\n")
        script.flush()
        result = run_bytes(["debugfs", "-w", "-f", script.name, device], env=env)
    errors = [line for line in result.stderr.decode(errors="replace").splitlines()
              if line.strip() and not line.startswith("debugfs ")]
    if result.returncode != 0 or errors:
        raise ArchamiError(f"setting inode times with debugfs failed: {(errors or ['exit status'])[0]}")
    log.info("inode times: atime and ctime of %d inodes set to %d", len(inodes), epoch)
    return len(inodes)


def ext4_env(epoch: int | None) -> dict[str, str]:
    return {} if epoch is None else {FAKE_TIME_ENV: str(epoch)}


def check_epoch(value: int) -> int:
    if value < 0 or value >= 2**32:
        raise ArchamiError(f"SOURCE_DATE_EPOCH {value} is outside what ext4 and FAT can record")
    return value




def pin_snapshot(spec: ImageSpec, snapshot: str | None) -> ImageSpec:
    """The spec installing from `snapshot` (a dated archive) instead of its mirrors; mirrors with "$region"
    in them are the instances' and stay. Pure."""
    if snapshot is None:
        return spec
    kept = tuple(m for m in spec.mirrors if "$region" in m)
    return spec.model_copy(update={"mirrors": (snapshot, *kept)})


def build_epoch(settings: Reproducible, distro: str, root: Path) -> tuple[int, str]:
    """SOURCE_DATE_EPOCH of a build and where it came from: the definition's, else the newest package's
    date in the (cached or bootstrapped) root, else the newest mtime under /usr."""
    if settings.source_date_epoch is not None:
        return check_epoch(settings.source_date_epoch), "the definition"
    newest = newest_package_date(distro, root)
    if newest is not None:
        return check_epoch(newest), "the newest package"
    usr = root / "usr"
    times = [int(os.lstat(os.path.join(d, n)).st_mtime) for d, _dirs, files in os.walk(usr) for n in files]
    if not times:
        raise ArchamiError(f"no files under {usr}: set reproducible.source_date_epoch")
    return check_epoch(max(times)), "the newest file under /usr"
