"""The files of a package: a directory scanned into sorted, typed entries (what goes into the archive)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from archami.errors import ArchamiError

EntryKind = Literal["file", "dir", "link"]


@dataclass(frozen=True)
class TreeEntry:
    """One archive member. `path` is relative with no leading './' ("usr/bin/x"); regular files carry
    their bytes either in `data` (generated metadata) or at `source` (a file on disk)."""

    path: str
    kind: EntryKind
    mode: int  # permission bits only (0o7777)
    data: bytes | None = None
    source: Path | None = None
    target: str = ""  # symlink target

    @property
    def size(self) -> int:
        if self.kind != "file":
            return 0
        if self.data is not None:
            return len(self.data)
        assert self.source is not None
        return self.source.stat().st_size

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None, self.path
        return self.source.read_bytes()

    @property
    def sort_key(self) -> bytes:
        # makepkg lists files with LC_COLLATE=C: plain byte order of the whole path.
        return os.fsencode(self.path)


def scan_tree(root: Path) -> list[TreeEntry]:
    """Every file, directory and symlink under `root` (not `root` itself), in makepkg's order.

    Hard links become separate files and owners are dropped (packages are root:root); device nodes,
    sockets and FIFOs have no place in a package and are refused.
    """
    entries: list[TreeEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            info = full.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                entries.append(TreeEntry(rel, "link", 0o777, target=os.readlink(full)))
            elif stat.S_ISDIR(info.st_mode):
                entries.append(TreeEntry(rel, "dir", mode))
            elif stat.S_ISREG(info.st_mode):
                entries.append(TreeEntry(rel, "file", mode, source=full))
            else:
                raise ArchamiError(f"{full}: only files, directories and symlinks can go into a package")
    return sorted(entries, key=lambda e: e.sort_key)


def installed_size(entries: list[TreeEntry]) -> int:
    """makepkg's `size`: the bytes of every regular file in the package (metadata excluded)."""
    return sum(e.size for e in entries if e.kind == "file" and not e.path.startswith("."))
