"""Read an ext4 filesystem inside a disk image without mounting it: the partition table with
`sfdisk --json`, the filesystem with `debugfs` (read-only, `image?offset=N`)."""

from __future__ import annotations

import json
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archami.audit.fsview import Entry, kind_of
from archami.errors import ArchamiError
from archami.runner import Finished, run_bytes

EXT4_MAGIC_OFFSET = 1024 + 0x38  # s_magic in the superblock
EXT4_MAGIC = b"\x53\xef"
SECTOR = 512


class AuditError(ArchamiError):
    """The image could not be read (or audited at all): distinct from an audit with findings (exit 1)."""

    exit_code = 4


@dataclass(frozen=True)
class Partition:
    number: int  # 1-based; 0 for a bare filesystem image
    offset: int  # bytes
    size: int


def _run(argv: list[str], timeout: float | None = None) -> Finished:
    return run_bytes(argv, timeout=timeout)


def is_ext4(image: Path, offset: int) -> bool:
    with image.open("rb") as handle:
        handle.seek(offset + EXT4_MAGIC_OFFSET)
        return handle.read(2) == EXT4_MAGIC


def partitions(image: Path) -> list[Partition]:
    """The image's partitions, or the whole file as partition 0 when it has no partition table."""
    result = _run(["sfdisk", "--json", str(image)])
    if result.returncode != 0:
        return [Partition(0, 0, image.stat().st_size)]
    table = json.loads(result.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", SECTOR))
    return [
        Partition(index + 1, int(p["start"]) * sector, int(p["size"]) * sector)
        for index, p in enumerate(table.get("partitions", []))
    ]


def ext4_partitions(image: Path) -> list[Partition]:
    return [p for p in partitions(image) if is_ext4(image, p.offset)]


def _quote(path: str) -> str | None:
    """debugfs parses its command line like a shell with double quotes; paths it cannot express are skipped."""
    if '"' in path or "\n" in path:
        return None
    return f'"{path}"'


class Ext4View:
    """An ext4 filesystem at `offset` bytes inside `image`, read through debugfs (never written)."""

    def __init__(self, image: Path, offset: int = 0) -> None:
        self.device = f"{image}?offset={offset}" if offset else str(image)
        self._entries: dict[str, Entry] | None = None
        probe = _run(["debugfs", "-R", "stats -h", self.device])
        if probe.returncode != 0 or b"Filesystem magic number" not in probe.stdout:
            raise AuditError(f"{image}: no ext4 filesystem at offset {offset}: {probe.stderr.decode().strip()}")

    def _batch(self, commands: list[str]) -> str:
        """Run many debugfs commands in one process (a whole directory level at a time)."""
        with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
            script.write("\n".join(commands) + "\n")
            script.flush()
            result = _run(["debugfs", "-f", script.name, self.device])
        return result.stdout.decode(errors="surrogateescape")

    def _walk(self) -> dict[str, Entry]:
        root_entry = Entry("/", "dir", 0, 0o755)
        found: dict[str, Entry] = {"/": root_entry}
        level = ["/"]
        while level:
            commands, asked = [], []
            for directory in level:
                quoted = _quote(directory)
                if quoted is not None:
                    commands.append(f"ls -p {quoted}")
                    asked.append(directory)
            output = self._batch(commands)
            next_level: list[str] = []
            current: str | None = None
            for line in output.splitlines():
                if line.startswith("debugfs: ls -p "):
                    current = line[len("debugfs: ls -p "):].strip().strip('"')
                    continue
                fields = line.split("/")
                # "/inode/mode/uid/gid/name/size/" -> ['', inode, mode, uid, gid, name, size, '']
                if current is None or len(fields) != 8 or fields[5] in (".", "..", ""):
                    continue
                try:
                    mode = int(fields[2], 8)
                except ValueError:
                    continue
                path = posixpath.join(current, fields[5])
                entry = Entry(path, kind_of(mode), int(fields[6] or 0), mode & 0o7777)
                found[path] = entry
                if entry.kind == "dir":
                    next_level.append(path)
            level = next_level
        return found

    def entries(self) -> Iterator[Entry]:
        if self._entries is None:
            self._entries = self._walk()
        return iter(self._entries.values())

    def entry(self, path: str) -> Entry | None:
        if self._entries is None:
            self._entries = self._walk()
        return self._entries.get(posixpath.normpath(path))

    def read(self, path: str, limit: int = 1 << 20) -> bytes | None:
        entry = self.entry(path)
        quoted = _quote(path)
        if entry is None or entry.kind != "file" or quoted is None:
            return None
        result = _run(["debugfs", "-R", f"cat {quoted}", self.device])
        return result.stdout[:limit] if result.returncode == 0 else None

    def read_many(self, paths: list[str], limit: int = 1 << 20) -> dict[str, bytes]:
        """Many files in one debugfs process: each is dumped into a private temporary directory."""
        wanted = [(p, q) for p in paths if (e := self.entry(p)) is not None and e.kind == "file"
                  and (q := _quote(p)) is not None]
        if not wanted:
            return {}
        with tempfile.TemporaryDirectory(prefix="archami-audit-") as scratch:
            self._batch([f'dump {quoted} "{scratch}/{n}"' for n, (_path, quoted) in enumerate(wanted)])
            out: dict[str, bytes] = {}
            for n, (path, _quoted) in enumerate(wanted):
                dumped = Path(scratch) / str(n)
                if dumped.is_file() and not dumped.is_symlink():
                    with dumped.open("rb") as handle:
                        out[path] = handle.read(limit)
            return out

    def readlink(self, path: str) -> str | None:
        entry = self.entry(path)
        quoted = _quote(path)
        if entry is None or entry.kind != "link" or quoted is None:
            return None
        result = _run(["debugfs", "-R", f"stat {quoted}", self.device])
        for line in result.stdout.decode(errors="replace").splitlines():
            if line.startswith("Fast link dest:"):
                return line.split(":", 1)[1].strip().strip('"')
        # A target longer than 59 bytes lives in a data block: cat reads it.
        slow = _run(["debugfs", "-R", f"cat {quoted}", self.device])
        return slow.stdout.decode(errors="replace") or None
