"""A read-only view of a filesystem tree, the same for a root directory and for an ext4 image.

The audit rules see only this interface, so every rule runs identically on a build root and on a finished
image read with debugfs (without mounting it).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

Kind = Literal["file", "dir", "link", "other"]
MAX_LINK_HOPS = 16


@dataclass(frozen=True)
class Entry:
    path: str  # absolute inside the tree: "/etc/shadow"
    kind: Kind
    size: int
    mode: int  # permission bits


class FsView(Protocol):
    def entries(self) -> Iterator[Entry]:
        """Every entry of the tree (symlinks are not followed)."""
        ...

    def entry(self, path: str) -> Entry | None: ...

    def read(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """Content of a regular file (symlinks not followed), None when it is missing or not a file."""
        ...

    def readlink(self, path: str) -> str | None: ...

    def read_many(self, paths: list[str], limit: int = 1 << 20) -> dict[str, bytes]:
        """Contents of many regular files at once (missing ones left out): what content scans use."""
        ...


def kind_of(mode: int) -> Kind:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def resolve(view: FsView, path: str) -> str:
    """Follow symlinks inside the tree (an absolute target means the tree's root, never the host's)."""
    for _ in range(MAX_LINK_HOPS):
        entry = view.entry(path)
        if entry is None or entry.kind != "link":
            return path
        target = view.readlink(path) or ""
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if not path.startswith("/"):
            path = "/" + path
    return path


def read_followed(view: FsView, path: str, limit: int = 1 << 20) -> bytes | None:
    return view.read(resolve(view, path), limit)


class RootView:
    """A root directory on this machine (a build's root before it becomes an image)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def entries(self) -> Iterator[Entry]:
        for directory, dirs, files in os.walk(self.root):
            rel = "/" + os.path.relpath(directory, self.root).removeprefix(".").lstrip("/")
            for name in sorted(dirs) + sorted(files):
                entry = self.entry(posixpath.join(rel, name))
                if entry is not None:
                    yield entry

    def entry(self, path: str) -> Entry | None:
        try:
            info = os.lstat(self._host(path))
        except OSError:
            return None
        return Entry(path, kind_of(info.st_mode), info.st_size, stat.S_IMODE(info.st_mode))

    def read(self, path: str, limit: int = 1 << 20) -> bytes | None:
        entry = self.entry(path)
        if entry is None or entry.kind != "file":
            return None
        with open(self._host(path), "rb") as handle:
            return handle.read(limit)

    def readlink(self, path: str) -> str | None:
        try:
            return os.readlink(self._host(path))
        except OSError:
            return None

    def read_many(self, paths: list[str], limit: int = 1 << 20) -> dict[str, bytes]:
        found = {path: self.read(path, limit) for path in paths}
        return {path: data for path, data in found.items() if data is not None}
