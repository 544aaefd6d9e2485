"""Arch's file layout for a Debian package's files.

Arch has merged /usr with one binary directory: /bin, /sbin and /usr/sbin are links to /usr/bin, and
/lib, /lib64 and /usr/lib64 links to /usr/lib, all owned by the `filesystem` package, so no other package
may ship a path below them. Files move there; symlinks are re-aimed so they still reach what they reached.
Documentation, manual pages and translations are left out (size), and so is Debian-only machinery
(sysvinit scripts, dpkg and lintian data).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

# Longest prefix first.
PREFIX_MAP = (
    ("usr/sbin/", "usr/bin/"),
    ("usr/lib64/", "usr/lib/"),
    ("sbin/", "usr/bin/"),
    ("bin/", "usr/bin/"),
    ("lib64/", "usr/lib/"),
    ("lib/", "usr/lib/"),
    ("var/run/", "run/"),
    ("var/lock/", "run/lock/"),
)
ALIASES = {"bin", "sbin", "lib", "lib64", "usr/sbin", "usr/lib64", "var/run", "var/lock"}

DROPPED_PREFIXES = (
    "usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/",
    "usr/share/bug/", "usr/share/bash-completion/", "usr/share/zsh/", "usr/share/fish/", "etc/init.d/",
    "etc/rc0.d/", "etc/rc1.d/", "etc/rc2.d/", "etc/rc3.d/", "etc/rc4.d/", "etc/rc5.d/", "etc/rc6.d/",
    "etc/rcS.d/", "etc/cron.daily/", "etc/cron.weekly/", "etc/logrotate.d/", "etc/kernel/",
    "usr/share/initramfs-tools/", "etc/initramfs-tools/", "etc/runit/", "etc/sv/", "etc/ufw/", "var/log/runit/",
    "usr/share/apport/", "usr/share/gdb/", "etc/apparmor.d/", "usr/lib/tmpfiles.d/debian.conf",
    "usr/lib/sysusers.d/debian-udev.conf",
)  # fmt: skip


def arch_path(path: str) -> str:
    """Where a Debian path (relative, no leading '/') lives on Arch."""
    for old, new in PREFIX_MAP:
        if path.startswith(old):
            return new + path[len(old) :]
        if path == old.rstrip("/"):
            return new.rstrip("/")
    return path


def _dropped(path: str) -> bool:
    return any(path.startswith(p) or path + "/" == p for p in DROPPED_PREFIXES)


def _retarget(link_path: str, target: str, new_path: str) -> str | None:
    """The target for a symlink moved from link_path to new_path, reaching the same (mapped) file.

    None when the link would point at itself (e.g. usr/sbin/x -> ../bin/x once both are usr/bin/x)."""
    absolute = target.startswith("/")
    joined = target.lstrip("/") if absolute else posixpath.join(posixpath.dirname(link_path), target)
    resolved = posixpath.normpath(joined)
    mapped = arch_path(resolved)
    if mapped == new_path:
        return None
    if absolute:
        return "/" + mapped
    if mapped == resolved and new_path == link_path:
        return target  # nothing moved: keep the package's own spelling
    return posixpath.relpath(mapped, posixpath.dirname(new_path) or ".")


def unpack_into(deb: Path, dest: Path) -> list[str]:
    """Extract a .deb's files into dest in Arch's layout; returns the (Arch) paths of regular files."""
    files: list[str] = []
    with tempfile.TemporaryDirectory(prefix="archshaped-deb-") as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        for dirpath, dirnames, filenames in os.walk(tmp):
            rel_dir = os.path.relpath(dirpath, tmp)
            for name in sorted(dirnames + filenames):
                src = Path(dirpath) / name
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                info = src.lstat()
                if rel in ALIASES:
                    continue  # filesystem's link: its contents are mapped one by one
                if _dropped(rel + ("/" if stat.S_ISDIR(info.st_mode) else "")):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                new = arch_path(rel)
                target = dest / new
                if stat.S_ISDIR(info.st_mode):
                    target.mkdir(parents=True, exist_ok=True)
                    target.chmod(stat.S_IMODE(info.st_mode))
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if stat.S_ISLNK(info.st_mode):
                    link = _retarget(rel, os.readlink(src), new)
                    if link is None or target.exists() or target.is_symlink():
                        continue  # a self-link, or the real file already took the name
                    target.symlink_to(link)
                else:
                    if target.is_symlink():
                        target.unlink()  # the real file wins over an alias link
                    shutil.copy2(src, target, follow_symlinks=False)
                    files.append(new)
    return files
