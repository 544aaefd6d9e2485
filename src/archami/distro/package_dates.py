"""The newest package's date in an image root: the default SOURCE_DATE_EPOCH of a reproducible build.

Arch: the largest %BUILDDATE% in pacman's local database. Debian records no build date in dpkg's
database, but dpkg unpacks every file with the time stamp the package was built with (debhelper clamps
them to the changelog date), so the newest mtime of a file dpkg installed under /usr is the newest
package's date. Files maintainer scripts write later (bytecode, caches) are in no .list file and do not
count; /etc is left out because scripts may rewrite configuration files that packages ship.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def newest_pacman_build_date(root: Path) -> int | None:
    newest: int | None = None
    for desc in (root / "var/lib/pacman/local").glob("*/desc"):
        lines = desc.read_text(errors="replace").splitlines()
        for index, line in enumerate(lines[:-1]):
            if line == "%BUILDDATE%" and lines[index + 1].strip().isdigit():
                value = int(lines[index + 1])
                newest = value if newest is None else max(newest, value)
    return newest


def newest_dpkg_file_date(root: Path) -> int | None:
    newest: int | None = None
    for listing in (root / "var/lib/dpkg/info").glob("*.list"):
        for line in listing.read_text(errors="surrogateescape").splitlines():
            if not line.startswith("/usr/") or line.startswith("/usr/local/"):
                continue
            try:
                info = os.lstat(root / line.lstrip("/"))
            except OSError:
                continue  # excluded by dpkg's path filters, or removed by the build
            if not stat.S_ISDIR(info.st_mode):
                mtime = int(info.st_mtime)
                newest = mtime if newest is None else max(newest, mtime)
    return newest


def newest_package_date(distro: str, root: Path) -> int | None:
    """Seconds since the epoch of the newest package in `root`, or None when the database has none."""
    if distro == "arch":
        return newest_pacman_build_date(root)
    if distro == "debian":
        return newest_dpkg_file_date(root)
    return None
