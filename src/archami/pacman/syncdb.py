"""pacman sync databases: `REPO.db.tar.*` (a `desc` per package) and `REPO.files.tar.*` (`desc` plus
`files`), in the layout and with the %FIELD% keys, order and values that `repo-add` writes.

Written by hand because no maintained Python library reads or writes them and repo-add cannot be
driven as a library (it re-reads every package and shells out per field). Tests compare our output
with repo-add's for the same packages and let real pacman read it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import zstandard

from archami.errors import ArchamiError
from archami.pacman.archive import read_package
from archami.pacman.compression import compression_for, open_compressed_read, open_compressed_write

MAX_SIGNATURE = 16384  # repo-add refuses bigger .sig files; so does libalpm


class SyncDbError(ArchamiError):
    """A sync database or a package cannot be read into one."""


@dataclass
class DbEntry:
    """One package in a sync database. List fields may be empty; `files` is only in the .files db."""

    filename: str
    name: str
    version: str
    base: str = ""
    desc: str = ""
    groups: list[str] = field(default_factory=list)
    csize: int = 0
    isize: int = 0
    md5sum: str = ""
    sha256sum: str = ""
    pgpsig: str = ""
    url: str = ""
    license: list[str] = field(default_factory=list)
    arch: str = ""
    builddate: int = 0
    packager: str = ""
    replaces: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)
    optdepends: list[str] = field(default_factory=list)
    makedepends: list[str] = field(default_factory=list)
    checkdepends: list[str] = field(default_factory=list)
    files: list[str] | None = None
    extra: dict[str, list[str]] = field(default_factory=dict)  # keys repo-add does not write, kept

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"

    def desc_fields(self) -> dict[str, list[str]]:
        """%KEY% -> values, in repo-add's order; numbers and strings as lists of lines."""
        out: dict[str, list[str]] = {}
        for name in DESC_ORDER:
            value = getattr(self, name)
            out[name.upper()] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        out.update(self.extra)
        return out

    def desc_text(self) -> str:
        # repo-add's format_entry: a key is written only when its first value is non-empty.
        return "".join(
            f"%{key}%\n" + "".join(f"{v}\n" for v in values) + "\n"
            for key, values in self.desc_fields().items()
            if values and values[0] != ""
        )

    def files_text(self) -> str:
        return "%FILES%\n" + "".join(f"{name}\n" for name in self.files or [])


# The order repo-add writes desc keys in (db_write_entry in pacman 6's repo-add).
DESC_ORDER = (
    "filename", "name", "base", "version", "desc", "groups", "csize", "isize", "md5sum", "sha256sum",
    "pgpsig", "url", "license", "arch", "builddate", "packager", "replaces", "conflicts", "provides",
    "depends", "optdepends", "makedepends", "checkdepends",
)  # fmt: skip
_LIST_FIELDS = {f.name for f in fields(DbEntry) if f.name not in ("files", "extra") and "list" in str(f.type)}
_INT_FIELDS = {"csize", "isize", "builddate"}


@dataclass(frozen=True)
class FileDigests:
    size: int
    md5: str
    sha256: str


def file_digests(path: Path) -> FileDigests:
    """Size, MD5 and SHA-256 of a file, read in chunks (kernel packages are large)."""
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return FileDigests(size, md5.hexdigest(), sha256.hexdigest())


def _normalize(value: str) -> str:
    # repo-add collapses every whitespace run in a .PKGINFO value to one space.
    return re.sub(r"\s+", " ", value).strip()


def entry_for_package(package: Path) -> DbEntry:
    """The database entry repo-add would write for `package` (and its detached `package.sig`)."""
    pkg = read_package(package)
    info = pkg.info
    digests = file_digests(package)
    pgpsig = ""
    sig = package.with_name(package.name + ".sig")
    if sig.exists():
        raw = sig.read_bytes()
        if b"BEGIN PGP SIGNATURE" in raw:
            raise SyncDbError(f"{sig}: armored signatures cannot go into a database; sign with --no-armor")
        if len(raw) > MAX_SIGNATURE:
            raise SyncDbError(f"{sig}: {len(raw)} bytes is too big for a package signature")
        pgpsig = base64.b64encode(raw).decode()
    n = _normalize

    def items(values: list[str]) -> list[str]:
        # An empty value would end its %KEY% block early; repo-add drops such keys, we drop the value.
        return [v for v in (_normalize(value) for value in values) if v]

    return DbEntry(
        filename=package.name,
        name=n(info.pkgname),
        version=n(info.pkgver),
        base=n(info.pkgbase),
        desc=n(info.pkgdesc),
        groups=items(info.groups),
        csize=digests.size,
        isize=info.size,
        md5sum=digests.md5,
        sha256sum=digests.sha256,
        pgpsig=pgpsig,
        url=n(info.url),
        license=items(info.license),
        arch=n(info.arch),
        builddate=info.builddate,
        packager=n(info.packager),
        replaces=items(info.replaces),
        conflicts=items(info.conflicts),
        provides=items(info.provides),
        depends=items(info.depends),
        optdepends=items(info.optdepends),
        makedepends=items(info.makedepends),
        checkdepends=items(info.checkdepends),
        files=pkg.files,
    )


def parse_desc(text: str) -> dict[str, list[str]]:
    """`%KEY%` blocks -> {KEY: [lines]}."""
    result: dict[str, list[str]] = {}
    key: str | None = None
    for line in text.split("\n"):
        if key is None:
            if not line:
                continue
            match = re.fullmatch(r"%([A-Z0-9_]+)%", line)
            if not match:
                raise SyncDbError(f"unexpected line {line!r} outside a %KEY% block")
            key = match.group(1)
            result[key] = []
        elif line:
            result[key].append(line)
        else:
            key = None
    return result


def entry_from_desc(desc: dict[str, list[str]], files: list[str] | None) -> DbEntry:
    values: dict[str, object] = {}
    extra: dict[str, list[str]] = {}
    for key, lines in desc.items():
        name = key.lower()
        if name not in DESC_ORDER:
            extra[key] = lines
        elif name in _INT_FIELDS:
            try:
                values[name] = int(lines[0]) if lines else 0
            except ValueError:
                raise SyncDbError(f"%{key}% is not a number: {lines[0]!r}") from None
        elif name in _LIST_FIELDS:
            values[name] = list(lines)
        else:
            values[name] = lines[0] if lines else ""
    for required in ("filename", "name", "version"):
        if not values.get(required):
            raise SyncDbError(f"database entry without %{required.upper()}%")
    return DbEntry(files=files, extra=extra, **values)  # type: ignore[arg-type]


def read_db(path: Path) -> list[DbEntry]:
    """Every entry of a .db or .files database (any compression), sorted by name."""
    descs: dict[str, str] = {}
    files: dict[str, str] = {}
    try:
        with open_compressed_read(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                directory, _, leaf = member.name.removeprefix("./").rpartition("/")
                extracted = tar.extractfile(member)
                if extracted is None or leaf not in ("desc", "files"):
                    continue
                text = extracted.read().decode("utf-8", errors="replace")
                (descs if leaf == "desc" else files)[directory] = text
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
        raise SyncDbError(f"{path}: not a readable sync database ({exc})") from None
    entries = []
    for directory, desc in descs.items():
        file_list = None
        if directory in files:
            file_list = parse_desc(files[directory]).get("FILES", [])
        try:
            entries.append(entry_from_desc(parse_desc(desc), file_list))
        except SyncDbError as exc:
            raise SyncDbError(f"{path}: {directory}/desc: {exc}") from None
    return sorted(entries, key=lambda e: e.name)


def write_db(path: Path, entries: list[DbEntry], *, with_files: bool, mtime: int | None = None) -> None:
    """Write a database atomically. `mtime` defaults to the newest build date, so a database made from
    the same packages is the same file."""
    kind = compression_for(path)
    stamp = mtime if mtime is not None else max((e.builddate for e in entries), default=0)
    members: list[tuple[str, bytes | None]] = []
    for entry in sorted(entries, key=lambda e: os.fsencode(e.dirname)):
        members.append((entry.dirname, None))
        members.append((f"{entry.dirname}/desc", entry.desc_text().encode()))
        if with_files:
            if entry.files is None:
                raise SyncDbError(f"{entry.dirname}: no file list for the .files database")
            members.append((f"{entry.dirname}/files", entry.files_text().encode()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            open_compressed_write(raw, kind) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.mtime = stamp
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if data is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
