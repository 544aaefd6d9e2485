"""`.MTREE`: the gzip-compressed file list with digests that makepkg stores in every package
(`pacman -Qkk` checks installed files against it).

makepkg makes it with `bsdtar --format=mtree --options='!all,use-set,type,uid,gid,mode,time,size,md5,
sha256,link'`. This module reproduces libarchive's mtree writer for those options byte for byte
(tests compare it with bsdtar's output): entries are written directory by directory, and before each
directory a `/set` line switches the default uid/gid/mode to the value most used by its children.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass, field

from archami.pacman.tree import TreeEntry

# Characters libarchive writes as-is; everything else becomes a backslash and three octal digits.
_SAFE = frozenset(range(0x21, 0x7F)) - {ord("#"), ord("="), ord("\\")}


def mtree_quote(text: str) -> str:
    out = []
    for byte in os.fsencode(text):
        out.append(chr(byte) if byte in _SAFE else f"\\{byte // 64}{byte // 8 % 8}{byte % 8}")
    return "".join(out)


class _MostUsed:
    """libarchive's attr_counter list: the head is the value that first reached the highest count."""

    def __init__(self) -> None:
        self.items: list[list[int]] = []  # [value, count], head first

    def add(self, value: int) -> None:
        for index, item in enumerate(self.items):
            if item[0] == value:
                item[1] += 1
                # Move it up past every predecessor with a smaller count (ties keep their place).
                target = index
                while target > 0 and self.items[target - 1][1] < item[1]:
                    target -= 1
                if target != index:
                    self.items.insert(target, self.items.pop(index))
                return
        self.items.append([value, 1])

    @property
    def head(self) -> tuple[int, int] | None:
        return (self.items[0][0], self.items[0][1]) if self.items else None


@dataclass
class _Defaults:
    """The values the last `/set` line established."""

    processing: bool = False
    keys: set[str] = field(default_factory=set)
    uid: int = 0
    gid: int = 0
    mode: int = 0


# Packages are always root:root; uid and gid still go through the same /set logic as mode.
_UID = 0
_GID = 0


def _write_set(lines: list[str], defaults: _Defaults, children: list[TreeEntry]) -> None:
    counters = {"uid": _MostUsed(), "gid": _MostUsed(), "mode": _MostUsed()}
    for child in children:
        counters["uid"].add(_UID)
        counters["gid"].add(_GID)
        counters["mode"].add(child.mode)
    parts: list[str] = []
    if not defaults.processing:
        keys = {k for k, c in counters.items() if c.head is not None}
        parts.append(" type=file")
        emit = set(keys)
    else:
        keys = set(defaults.keys)
        emit = set()
        for key, counter in counters.items():
            head = counter.head
            if head is None:
                continue
            if key not in defaults.keys or (head[1] >= 2 and getattr(defaults, key) != head[0]):
                emit.add(key)
        keys |= emit
    for key in ("uid", "gid", "mode"):
        head = counters[key].head
        if key in emit and head is not None:
            setattr(defaults, key, head[0])
            parts.append(f" {key}={head[0]:o}" if key == "mode" else f" {key}={head[0]}")
    if parts:
        lines.append("/set" + "".join(parts))
    defaults.keys = keys | {"type"}
    defaults.processing = True


def _line(entry: TreeEntry, mtime: int, defaults: _Defaults) -> str:
    parts = [mtree_quote("./" + entry.path), f" time={mtime}.0"]
    if entry.mode != defaults.mode:
        parts.append(f" mode={entry.mode:o}")
    if defaults.gid != _GID:
        parts.append(f" gid={_GID}")
    if defaults.uid != _UID:
        parts.append(f" uid={_UID}")
    if entry.kind == "link":
        parts.append(f" type=link link={mtree_quote(entry.target)}")
    elif entry.kind == "dir":
        parts.append(" type=dir")
    else:
        data = entry.read()
        parts.append(f" size={len(data)}")
        parts.append(f" md5digest={hashlib.md5(data).hexdigest()}")
        parts.append(f" sha256digest={hashlib.sha256(data).hexdigest()}")
    return "".join(parts)


def mtree_text(entries: list[TreeEntry], mtime: int) -> str:
    """The uncompressed .MTREE for `entries` (which must include every parent directory)."""
    children: dict[str, list[TreeEntry]] = {"": []}
    for entry in entries:
        parent = entry.path.rpartition("/")[0]
        children.setdefault(parent, []).append(entry)
        if entry.kind == "dir":
            children.setdefault(entry.path, [])
    lines = ["#mtree"]
    defaults = _Defaults()

    def visit(directory: str, entry: TreeEntry | None) -> None:
        kids = sorted(children.get(directory, []), key=lambda e: os.fsencode(e.path.rpartition("/")[2]))
        _write_set(lines, defaults, kids)
        if entry is not None:
            lines.append(_line(entry, mtime, defaults))
        lines.extend(_line(kid, mtime, defaults) for kid in kids if kid.kind != "dir")
        for kid in kids:
            if kid.kind == "dir":
                visit(kid.path, kid)

    visit("", None)
    return "\n".join(lines) + "\n"


def mtree_gz(entries: list[TreeEntry], mtime: int) -> bytes:
    """The .MTREE member: gzip without a name or timestamp in its header (like `gzip -n`)."""
    return gzip.compress(mtree_text(entries, mtime).encode(), compresslevel=9, mtime=0)
