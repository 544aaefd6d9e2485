"""Building and reading pacman package archives (`name-version-arch.pkg.tar.zst`).

Built by hand (tarfile + zstandard) because no maintained Python library writes pacman packages, and
makepkg refuses to run as root and needs a PKGBUILD. The archive matches what makepkg produces:
`.BUILDINFO`, `.MTREE`, `.PKGINFO` (and `.INSTALL`) first, then every file in byte order, all owned
by root:root with the same mtime (SOURCE_DATE_EPOCH), so the same input gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from archami.errors import ArchamiError
from archami.pacman.compression import open_compressed_read, open_compressed_write
from archami.pacman.mtree import mtree_gz
from archami.pacman.pkginfo import BuildInfo, PkgInfo
from archami.pacman.tree import TreeEntry, installed_size, scan_tree

PKG_EXTENSIONS = (".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz", ".pkg.tar.bz2", ".pkg.tar")
METADATA = (".PKGINFO", ".BUILDINFO", ".MTREE", ".INSTALL", ".CHANGELOG")


class PackageError(ArchamiError):
    """A package file cannot be built or read."""


@dataclass
class PackageFile:
    """What is inside a package archive: its metadata and its file list (directories end in '/')."""

    path: Path
    info: PkgInfo
    files: list[str] = field(default_factory=list)
    install_script: str | None = None
    has_mtree: bool = False


def is_package_file(path: Path) -> bool:
    return path.name.endswith(PKG_EXTENSIONS)


def _tarinfo(entry: TreeEntry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mtime = mtime
    info.mode = entry.mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.size = entry.size
    return info


def build_package(
    root: Path,
    info: PkgInfo,
    out_dir: Path,
    *,
    source_date_epoch: int,
    buildinfo: BuildInfo | None = None,
    install_script: str | None = None,
    compression: str = "zstd",
) -> Path:
    """Pack the directory `root` (the package's files, as they will be under /) into out_dir.

    `info.size` and `info.builddate` are filled in here. Returns the package file's path.
    """
    content = scan_tree(root)
    reserved = [e.path for e in content if e.path.startswith(".")]
    if reserved:
        raise PackageError(f"{root}: top-level names starting with '.' are reserved for metadata: {reserved}")
    info.size = installed_size(content)
    info.builddate = source_date_epoch
    metadata = [TreeEntry(".PKGINFO", "file", 0o644, data=info.format().encode())]
    if buildinfo is not None:
        buildinfo.builddate = source_date_epoch
        metadata.append(TreeEntry(".BUILDINFO", "file", 0o644, data=buildinfo.format().encode()))
    if install_script is not None:
        metadata.append(TreeEntry(".INSTALL", "file", 0o644, data=install_script.encode()))
    mtree = TreeEntry(".MTREE", "file", 0o644, data=mtree_gz([*metadata, *content], source_date_epoch))
    entries = sorted([*metadata, mtree, *content], key=lambda e: e.sort_key)

    suffix = {"zstd": ".zst", "gzip": ".gz", "xz": ".xz", "bzip2": ".bz2", "none": ""}[compression]
    target = out_dir / f"{info.filename_stem}.pkg.tar{suffix}"
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=out_dir)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            open_compressed_write(raw, compression) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for entry in entries:
                data = io.BytesIO(entry.read()) if entry.kind == "file" else None
                tar.addfile(_tarinfo(entry, source_date_epoch), data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_package(path: Path) -> PackageFile:
    """Read a package's .PKGINFO, .INSTALL and file list (one pass over the archive)."""
    info: PkgInfo | None = None
    files: list[str] = []
    install: str | None = None
    has_mtree = False
    try:
        with open_compressed_read(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name == ".PKGINFO":
                    info = PkgInfo.parse(_member_text(tar, member))
                elif name == ".INSTALL":
                    install = _member_text(tar, member)
                elif name == ".MTREE":
                    has_mtree = True
                elif not name.startswith("."):
                    files.append(name + "/" if member.isdir() else name)
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
        raise PackageError(f"{path}: not a readable package archive ({exc})") from None
    if info is None:
        raise PackageError(f"{path}: no .PKGINFO: not a pacman package")
    return PackageFile(path, info, sorted(set(files), key=os.fsencode), install, has_mtree)


def _member_text(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    extracted = tar.extractfile(member)
    if extracted is None:
        raise PackageError(f"{member.name} is not a regular file")
    return extracted.read().decode("utf-8", errors="replace")


def payload_digest(path: Path) -> str:
    """A digest of everything a package installs and declares, but not how it was built: every member
    with its name, type, mode and bytes, except .BUILDINFO (it names the build tool's version) and .MTREE
    (it holds .BUILDINFO's digest; the files it describes are compared directly)."""
    digest = hashlib.sha256()
    with open_compressed_read(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.name.removeprefix("./") in (".BUILDINFO", ".MTREE"):
                continue
            digest.update(f"{member.name}\0{member.type!r}\0{member.mode:o}\0{member.linkname}\0".encode())
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                digest.update(hashlib.sha256(extracted.read()).digest())
    return digest.hexdigest()
