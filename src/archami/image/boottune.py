"""Boot-time work an EC2 instance gets nothing from, left out of the image (any distro).

Each change is an image property that holds on EC2 as it does under QEMU: the figures behind them are
bench/boot_debian.py's (boot to SSH under TCG, where every process start costs tens of milliseconds).
"""

from __future__ import annotations

import os
from pathlib import Path

from archami.image.rootfs import make_symlink, resolve_in_root, write_file

GENERATOR_DIR = "usr/lib/systemd/system-generators"
# systemd-ssh-generator (systemd 256+) offers sshd on AF_VSOCK and a local AF_UNIX socket. EC2 instances (and
# QEMU guests without a vsock device) have no local vsock CID, so it failed on every boot ("Failed to query
# local AF_VSOCK CID") after loading the vsock module; logins use sshd on TCP, which it has nothing to do with.
MASKED_GENERATORS = ("systemd-ssh-generator",)

# ConditionNeedsUpdate= units (ldconfig, journal catalog, hwdb, update-done) run when /usr is newer than these
# stamps. Package installation already rebuilt those caches in the image, so without stamps the first boot
# redid all of it (ldconfig alone 1.5 s under TCG).
UPDATE_STAMPS = ("/etc/.updated", "/var/.updated")


def mask_generators(root: Path, names: tuple[str, ...] = MASKED_GENERATORS) -> list[str]:
    """Mask each generator the image has, as `systemctl mask` does for units: a /dev/null link in /etc."""
    masked = []
    for name in names:
        if (root / GENERATOR_DIR / name).exists():
            make_symlink(root, f"/etc/systemd/system-generators/{name}", "/dev/null")
            masked.append(name)
    return masked


def update_stamp_text(nanoseconds: int) -> str:
    """What systemd-update-done writes (systemd compares TIMESTAMP_NSEC with /usr's mtime when the
    seconds are equal and the file system drops nanoseconds)."""
    return (
        "# Written by archami: the image's caches were rebuilt when its packages were installed.\n"
        f"TIMESTAMP_NSEC={int(nanoseconds)}\n"
    )


def write_update_stamps(root: Path, epoch: int | None) -> None:
    """Stamp /etc and /var as up to date with /usr: /usr's mtime as the image will have it (a reproducible
    build clamps a newer one to SOURCE_DATE_EPOCH), so two builds write the same stamps."""
    usr_ns = os.lstat(resolve_in_root(root, "/usr")).st_mtime_ns
    stamp = usr_ns if epoch is None else min(usr_ns, epoch * 1_000_000_000)
    for path in UPDATE_STAMPS:
        write_file(root, path, update_stamp_text(stamp))
        os.utime(resolve_in_root(root, path), ns=(stamp, stamp), follow_symlinks=False)

