"""Where two disk images differ, named as a user can act on it: the first differing file (its path and what
about it differs), else the filesystem or boot structure.

No mounts: the disk regions are compared byte for byte; inside an ext4 partition every differing block is
traced with debugfs to what owns it (a file's data -> that file's content; an inode table block -> the
inodes in it, compared field by field; else the superblock and group metadata); inside the EFI partition
the files are listed and read with mtools. `diffoscope`, when installed, shows the differing file's
content side by side.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from archami.audit.ext4 import Partition, is_ext4, partitions
from archami.errors import ArchamiError
from archami.runner import run_bytes

_CHUNK = 1 << 20
_MAX_BLOCKS = 4096  # differing blocks traced per filesystem: enough to name the first file, bounded time
_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}


@dataclass(frozen=True)
class FileDifference:
    path: str
    detail: str  # "content", or "mtime: 0x... != 0x..." lines


@dataclass(frozen=True)
class Difference:
    region: str  # "partition table", "partition 3 (ext4)", ...
    offset: int  # first differing byte of the disk
    files: list[FileDifference] = field(default_factory=list)  # sorted by path; empty when no file differs
    detail: str = ""  # what differs when no file does (superblock fields, ...)
    diffoscope: str | None = None  # diffoscope's report on the first differing file, when installed

    @property
    def first_file(self) -> FileDifference | None:
        return self.files[0] if self.files else None

    def summary(self) -> str:
        first = self.first_file
        if first is not None:
            more = f" (and {len(self.files) - 1} more)" if len(self.files) > 1 else ""
            return f"{self.region}: {first.path} differs: {first.detail}{more}"
        return f"{self.region}: {self.detail or f'bytes differ from offset {self.offset}'}"


def _hole(fd: int, at: int, length: int) -> bool:
    """Whether [at, at+length) of a sparse file is all hole (reads as zeros without being stored)."""
    try:
        return os.lseek(fd, at, os.SEEK_DATA) >= at + length
    except OSError:  # ENXIO: no data after `at`
        return True


def _chunks_differ(fa: int, fb: int, start: int, size: int) -> Iterator[int]:
    """Offsets (relative to `start`) of the 1 MiB chunks that differ between two open images (holes in both
    are skipped unread: most of a fresh image is hole)."""
    for offset in range(0, size, _CHUNK):
        length = min(_CHUNK, size - offset)
        if _hole(fa, start + offset, length) and _hole(fb, start + offset, length):
            continue
        if os.pread(fa, length, start + offset) != os.pread(fb, length, start + offset):
            yield offset


def _first_difference(a: Path, b: Path, start: int, size: int) -> int | None:
    with a.open("rb") as fa, b.open("rb") as fb:
        for offset in _chunks_differ(fa.fileno(), fb.fileno(), start, size):
            x = os.pread(fa.fileno(), _CHUNK, start + offset)
            y = os.pread(fb.fileno(), _CHUNK, start + offset)
            return start + offset + next(i for i in range(min(len(x), len(y))) if x[i] != y[i])
    return None


def differing_blocks(a: Path, b: Path, start: int, size: int, block: int) -> list[int]:
    """Filesystem block numbers (blocks of `block` bytes from `start`) whose bytes differ, at most _MAX_BLOCKS."""
    found: list[int] = []
    with a.open("rb") as fa, b.open("rb") as fb:
        for offset in _chunks_differ(fa.fileno(), fb.fileno(), start, size):
            for inner in range(0, min(_CHUNK, size - offset), block):
                at = start + offset + inner
                if os.pread(fa.fileno(), block, at) != os.pread(fb.fileno(), block, at):
                    found.append((offset + inner) // block)
                    if len(found) >= _MAX_BLOCKS:
                        return found
    return found


def _tool(argv: list[str]) -> str:
    result = run_bytes(argv, env=_MTOOLS_ENV)
    if result.returncode != 0 and not result.stdout:
        raise ArchamiError(f"{argv[0]} failed: {result.stderr.decode(errors='replace').strip()[:200]}")
    return result.stdout.decode(errors="surrogateescape")


def _debugfs(device: str, commands: list[str]) -> str:
    with tempfile.NamedTemporaryFile("w", prefix="archami-compare-", suffix=".debugfs") as script:
        script.write("\n".join(commands) + "\n")
        script.flush()
        return _tool(["debugfs", "-f", script.name, device])


@dataclass(frozen=True)
class Ext4Geometry:
    block_size: int
    inode_size: int
    inodes_per_group: int
    inode_tables: dict[int, int]  # group -> first block of its inode table
    header: dict[str, str]  # dumpe2fs -h fields


_TABLE = re.compile(r"Inode table at (\d+)-(\d+)")


def parse_dumpe2fs(text: str) -> Ext4Geometry:
    """Block and inode sizes, inode table locations and header fields from `dumpe2fs` output. Pure."""
    header: dict[str, str] = {}
    tables: dict[int, int] = {}
    group = -1
    for line in text.splitlines():
        numbered = re.match(r"Group (\d+):", line)
        if numbered:
            group = int(numbered.group(1))
        elif group < 0 and ":" in line:
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
        match = _TABLE.search(line)
        if match and group >= 0:
            tables[group] = int(match.group(1))
    return Ext4Geometry(int(header.get("Block size", "4096")), int(header.get("Inode size", "256")),
                        int(header.get("Inodes per group", "0") or 0), tables, header)


def inodes_in_block(geometry: Ext4Geometry, block: int) -> list[int]:
    """The inode numbers stored in filesystem block `block`, if it belongs to an inode table. Pure."""
    per_block = geometry.block_size // geometry.inode_size
    table_blocks = geometry.inodes_per_group * geometry.inode_size // geometry.block_size
    for group, first in geometry.inode_tables.items():
        if first <= block < first + table_blocks:
            base = group * geometry.inodes_per_group + (block - first) * per_block + 1
            return list(range(base, base + per_block))
    return []


_VOLATILE = ("Inode checksum:", "debugfs:")


def _stat_fields(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(_VOLATILE)]


def _split_stats(output: str) -> dict[int, list[str]]:
    """debugfs `stat <N>` outputs of a batch, by inode number."""
    result: dict[int, list[str]] = {}
    current: int | None = None
    lines: list[str] = []
    for line in output.splitlines():
        match = re.match(r"debugfs: stat <(\d+)>", line)
        if match:
            if current is not None:
                result[current] = _stat_fields("\n".join(lines))
            current, lines = int(match.group(1)), []
        else:
            lines.append(line)
    if current is not None:
        result[current] = _stat_fields("\n".join(lines))
    return result


def _names(device: str, inodes: list[int]) -> dict[int, str]:
    if not inodes:
        return {}
    names: dict[int, str] = {}
    for line in _debugfs(device, [f"ncheck {' '.join(map(str, inodes))}"]).splitlines()[1:]:
        number, _, path = line.partition("\t")
        if number.strip().isdigit() and path and not line.startswith("debugfs:"):
            names.setdefault(int(number), "/" + path.lstrip("/"))
    return names


def _owners(device: str, blocks: list[int]) -> dict[int, int]:
    """block -> inode owning it (data blocks only)."""
    owners: dict[int, int] = {}
    if not blocks:
        return owners
    for line in _debugfs(device, [f"icheck {' '.join(map(str, blocks))}"]).splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            owners[int(parts[0])] = int(parts[1])
    return owners


def compare_ext4(a: Path, b: Path, part: Partition) -> tuple[list[FileDifference], str]:
    """Every file of the ext4 filesystem in `part` whose inode or data differs, and the differing header
    fields. Assumes what two builds of one definition share: the same geometry."""
    dev_a, dev_b = f"{a}?offset={part.offset}", f"{b}?offset={part.offset}"
    geometry_a = parse_dumpe2fs(_tool(["dumpe2fs", dev_a]))
    geometry_b = parse_dumpe2fs(_tool(["dumpe2fs", dev_b]))
    header = [f"{key}: {value} != {geometry_b.header.get(key)}" for key, value in geometry_a.header.items()
              if geometry_b.header.get(key) != value and key != "Checksum"]
    blocks = differing_blocks(a, b, part.offset, part.size, geometry_a.block_size)
    table_inodes = sorted({n for block in blocks for n in inodes_in_block(geometry_a, block)})
    data_owner = _owners(dev_a, [block for block in blocks if not inodes_in_block(geometry_a, block)])
    details: dict[int, str] = {}
    if table_inodes:
        stats_a = _split_stats(_debugfs(dev_a, [f"stat <{n}>" for n in table_inodes]))
        stats_b = _split_stats(_debugfs(dev_b, [f"stat <{n}>" for n in table_inodes]))
        for number in table_inodes:
            left, right = stats_a.get(number, []), stats_b.get(number, [])
            if left != right:
                changed = [f"{' '.join(x.split())} -> {' '.join(y.split())}"
                           for x, y in zip(left, right, strict=False) if x != y]
                details[number] = "; ".join(changed[:3]) or "inode fields"
    for owner in data_owner.values():
        details.setdefault(owner, "content")
    names = _names(dev_a, sorted(details))
    # Inodes 1 and 3-10 are the filesystem's own (journal, resize inode): their changes are metadata.
    files = sorted((FileDifference(names.get(n, "/" if n == 2 else f"<inode {n}>"), d) for n, d in details.items()
                    if n == 2 or n >= 11), key=lambda f: f.path)
    return files, "; ".join(header)


def _fat_listing(spec: str) -> dict[str, str]:
    """path -> 'size date time' of every file and directory in a FAT image (mtools `mdir -/ -a`)."""
    found: dict[str, str] = {}
    directory = "/"
    for line in _tool(["mdir", "-/", "-a", "-i", spec, "::/"]).splitlines():
        if line.startswith("Directory for ::"):
            directory = line.split("::", 1)[1].strip() or "/"
            continue
        parts = line.split()
        if len(parts) >= 4 and parts[0] not in (".", "..") and re.match(r"\d{4}-\d\d-\d\d", parts[-2]):
            name = parts[0] + (f".{parts[1]}" if len(parts) == 5 and parts[1] != "<DIR>" else "")
            found[f"{directory.rstrip('/')}/{name}"] = " ".join(parts[-3:])
    return found


def _fat_read(spec: str, path: str, target: Path) -> bytes:
    """A file's bytes from a FAT image (b"" for a directory or a missing file)."""
    if target.is_dir():
        shutil.rmtree(target)
    target.unlink(missing_ok=True)
    run_bytes(["mcopy", "-n", "-i", spec, f"::{path}", str(target)], env=_MTOOLS_ENV)
    return target.read_bytes() if target.is_file() else b""


def fat_cluster_of(boot_sector: bytes, offset: int) -> int | None:
    """The FAT32 data cluster holding byte `offset` of the filesystem (None: boot sector, FSInfo or FAT). Pure."""
    sector = int.from_bytes(boot_sector[11:13], "little")
    per_cluster = boot_sector[13]
    reserved = int.from_bytes(boot_sector[14:16], "little")
    fats = boot_sector[16]
    fat_sectors = int.from_bytes(boot_sector[36:40], "little")
    data = (reserved + fats * fat_sectors) * sector
    return None if offset < data or not sector or not per_cluster else 2 + (offset - data) // (sector * per_cluster)


def _fat_clusters(spec: str, paths: list[str]) -> dict[int, str]:
    """cluster -> path of the file or directory occupying it (mtools `mshowfat`)."""
    owners: dict[int, str] = {}
    for path in ["/", *paths]:
        for line in _tool(["mshowfat", "-i", spec, f"::{path}"]).splitlines():
            for low, high in re.findall(r"(\d+)(?:-(\d+))?", line.partition("<")[2]):
                for cluster in range(int(low), int(high or low) + 1):
                    owners[cluster] = path
    return owners


def compare_fat(a: Path, b: Path, part: Partition, scratch: Path) -> tuple[list[FileDifference], str]:
    spec_a, spec_b = f"{a}@@{part.offset}", f"{b}@@{part.offset}"
    left, right = _fat_listing(spec_a), _fat_listing(spec_b)
    files = []
    for path in sorted(set(left) | set(right)):
        if path not in left or path not in right:
            files.append(FileDifference(path, f"only in {'the second' if path not in left else 'the first'} image"))
        elif left[path] != right[path]:
            files.append(FileDifference(path, f"size/date {left[path]} != {right[path]}"))
        elif "<DIR>" not in left[path]:
            one, two = _fat_read(spec_a, path, scratch / "a"), _fat_read(spec_b, path, scratch / "b")
            if hashlib.sha256(one).digest() != hashlib.sha256(two).digest():
                files.append(FileDifference(path, "content"))
    if files:
        return files, ""
    # The same names, sizes and minutes: the difference is finer (seconds, metadata). Name its owner.
    first = _first_difference(a, b, part.offset, part.size)
    assert first is not None
    with a.open("rb") as handle:
        handle.seek(part.offset)
        cluster = fat_cluster_of(handle.read(512), first - part.offset)
    if cluster is None:
        return [], "FAT boot sector, FSInfo or allocation table"
    owner = _fat_clusters(spec_a, sorted(left)).get(cluster)
    if owner is not None and (owner == "/" or "<DIR>" in left.get(owner, "")):
        return [FileDifference(owner, "directory entries (names, sizes or time stamps of what it holds)")], ""
    return ([FileDifference(owner, "content")] if owner else []), "" if owner else f"unused FAT cluster {cluster}"


def _region_name(part: Partition, image: Path) -> str:
    kind = "ext4" if is_ext4(image, part.offset) else "FAT" if _is_fat(image, part.offset) else "raw"
    return f"partition {part.number} ({kind})" if part.number else f"filesystem ({kind})"


def _is_fat(image: Path, offset: int) -> bool:
    with image.open("rb") as handle:
        handle.seek(offset)
        boot = handle.read(90)
    return boot[82:87] == b"FAT32" or boot[54:57] == b"FAT"


def _regions(image: Path, size: int) -> list[tuple[str, Partition]]:
    parts = partitions(image)
    if len(parts) == 1 and parts[0].number == 0:
        return [(_region_name(parts[0], image), parts[0])]
    regions = [("partition table and boot sector", Partition(0, 0, min(p.offset for p in parts)))]
    regions += [(_region_name(p, image), p) for p in parts]
    end = max(p.offset + p.size for p in parts)
    regions.append(("backup partition table", Partition(0, end, size - end)))
    return regions


def _diffoscope(a: bytes, b: bytes, name: str, scratch: Path) -> str | None:
    tool = shutil.which("diffoscope")
    if tool is None:
        return None
    left, right = scratch / "first" / name, scratch / "second" / name
    for path, data in ((left, a), (right, b)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    result = run_bytes([tool, "--text", "-", "--max-report-size", "200000", str(left), str(right)], timeout=300)
    return result.stdout.decode(errors="replace")


def _file_bytes(image: Path, region: str, part: Partition, path: str, scratch: Path) -> bytes | None:
    """A regular file's bytes (None for anything else, or a path debugfs cannot quote)."""
    if '"' in path:
        return None
    if "ext4" in region:
        device = f"{image}?offset={part.offset}"
        kind = run_bytes(["debugfs", "-R", f'stat "{path}"', device]).stdout.decode(errors="replace")
        if "Type: regular" not in kind:
            return None
        return run_bytes(["debugfs", "-R", f'cat "{path}"', device]).stdout
    if path == "/" or path.endswith("/"):
        return None
    data = _fat_read(f"{image}@@{part.offset}", path, scratch / "read")
    return None if (scratch / "read").is_dir() else data


def _content(a: Path, b: Path, region: str, part: Partition, first: FileDifference, scratch: Path
             ) -> tuple[FileDifference, str | None]:
    """The first differing file with "content" in its detail when its bytes differ too, and diffoscope's
    report on the two versions (when diffoscope is installed)."""
    left = _file_bytes(a, region, part, first.path, scratch)
    right = _file_bytes(b, region, part, first.path, scratch)
    if left is None or right is None or left == right:
        return first, None
    if not first.detail.startswith("content"):
        first = FileDifference(first.path, f"content; {first.detail}")
    return first, _diffoscope(left, right, Path(first.path).name or "file", scratch)


def compare_images(a: Path, b: Path) -> Difference | None:
    """None when the two images are byte for byte the same, else where they first differ (and which files)."""
    size_a, size_b = a.stat().st_size, b.stat().st_size
    if size_a != size_b:
        return Difference("whole disk", min(size_a, size_b), detail=f"sizes differ: {size_a} != {size_b} bytes")
    regions_a, regions_b = _regions(a, size_a), _regions(b, size_b)
    if [p for _, p in regions_a] != [p for _, p in regions_b]:
        return Difference("partition table", 0, detail="the partition layouts differ")
    with tempfile.TemporaryDirectory(prefix="archami-compare-") as tmp:
        scratch = Path(tmp)
        for name, part in regions_a:
            offset = _first_difference(a, b, part.offset, part.size)
            if offset is None:
                continue
            if "ext4" in name:
                files, detail = compare_ext4(a, b, part)
            elif "FAT" in name:
                files, detail = compare_fat(a, b, part, scratch)
            else:
                files, detail = [], f"bytes differ from offset {offset} (boot code or partition table)"
            report = None
            if files:
                files[0], report = _content(a, b, name, part, files[0], scratch)
            return Difference(name, offset, files, detail or "", report)
    return None
