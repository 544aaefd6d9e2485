"""A signed pacman repository directory: packages, their signatures, and the sync databases.

    DIR/NAME.db.tar.zst (+ .sig)     DIR/NAME.db -> NAME.db.tar.zst        (what `pacman -Sy` fetches)
    DIR/NAME.files.tar.zst (+ .sig)  DIR/NAME.files -> NAME.files.tar.zst  (`pacman -Fy`)
    DIR/<pkg>.pkg.tar.zst (+ .sig)

Only the newest version of each package is kept (pacman's vercmp). The directory is ready to serve
over HTTP or copy to S3 (which stores the symlinks' targets).
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from archami.artifacts import CheckResult
from archami.errors import ArchamiError
from archami.pacman.archive import PackageError, is_package_file, read_package
from archami.pacman.compression import SUFFIXES
from archami.pacman.gpg import Gpg, GpgError, Verifier
from archami.pacman.syncdb import DbEntry, SyncDbError, entry_for_package, file_digests, read_db, write_db
from archami.pacman.vercmp import vercmp

DEFAULT_NAME = "ec2"


@dataclass(frozen=True)
class Signer:
    """Who signs: a GnuPG home and the fingerprint of a secret key in it."""

    gpg: Gpg
    key: str

    def sign(self, path: Path) -> Path:
        return self.gpg.sign_detached(path, self.key)


@dataclass(frozen=True)
class Change:
    name: str
    action: Literal["added", "upgraded", "replaced", "unchanged", "skipped", "removed"]
    version: str
    previous: str | None = None
    detail: str = ""


@dataclass
class Repository:
    directory: Path
    name: str = DEFAULT_NAME
    compression: str = "zstd"

    @classmethod
    def open(cls, directory: Path, name: str | None = None, compression: str = "zstd") -> Repository:
        """A repository in `directory`; its name and compression are read from an existing database."""
        existing = sorted(directory.glob("*.db.tar*")) if directory.is_dir() else []
        existing = [p for p in existing if not p.name.endswith(".sig") and not p.name.startswith(".")]
        if name is None:
            names = sorted({p.name.split(".db.tar")[0] for p in existing})
            if len(names) > 1:
                raise ArchamiError(f"{directory}: several databases ({', '.join(names)}): say which with --name")
            name = names[0] if names else DEFAULT_NAME
        for path in existing:
            if path.name.split(".db.tar")[0] == name:
                compression = SUFFIXES.get(path.name.split(".db.tar")[1], compression)
        return cls(directory, name, compression)

    def _suffix(self) -> str:
        return next(s for s, kind in SUFFIXES.items() if kind == self.compression)

    @property
    def db_path(self) -> Path:
        return self.directory / f"{self.name}.db.tar{self._suffix()}"

    @property
    def files_path(self) -> Path:
        return self.directory / f"{self.name}.files.tar{self._suffix()}"

    def exists(self) -> bool:
        return self.db_path.exists()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the repository's lock (like repo-add's .lck) so two writers never interleave."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / f".{self.name}.lck").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ArchamiError(f"{self.directory}: another archami is changing repository {self.name}") from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def entries(self) -> dict[str, DbEntry]:
        """The packages now in the repository (from the .files database, which also has file lists)."""
        source = self.files_path if self.files_path.exists() else self.db_path
        if not source.exists():
            return {}
        return {entry.name: entry for entry in read_db(source)}

    def write(self, entries: dict[str, DbEntry], signer: Signer | None) -> None:
        """Write both databases and their links; sign them, or drop stale signatures when unsigned."""
        self.directory.mkdir(parents=True, exist_ok=True)
        values = list(entries.values())
        for path, with_files, link in ((self.db_path, False, "db"), (self.files_path, True, "files")):
            write_db(path, values, with_files=with_files)
            sig = path.with_name(path.name + ".sig")
            if signer is not None:
                signer.sign(path)
            else:
                sig.unlink(missing_ok=True)
            _symlink(self.directory / f"{self.name}.{link}", path.name)
            sig_link = self.directory / f"{self.name}.{link}.sig"
            if sig.exists():
                _symlink(sig_link, sig.name)
            else:
                sig_link.unlink(missing_ok=True)


def _symlink(link: Path, target: str) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _signature(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def _remove_package_file(directory: Path, filename: str) -> None:
    for path in (directory / filename, directory / (filename + ".sig")):
        path.unlink(missing_ok=True)


def add_packages(
    repo: Repository,
    packages: list[Path],
    *,
    signer: Signer | None = None,
    verifier: Verifier | None = None,
    resign: bool = False,
) -> list[Change]:
    """Add package files (copied in with their `.sig` when they live elsewhere) and rewrite the databases.

    A package without a signature is signed by `signer`; one that comes signed keeps its signature
    (checked by `verifier` when given) unless `resign`. An older version than the one in the repository
    is skipped; a newer one replaces it and its file is deleted. Every package is checked before the
    repository changes, so a refused package leaves it as it was.
    """
    with repo.locked():
        entries = repo.entries()
        newest = {name: entry.version for name, entry in entries.items()}
        planned: list[Change | Path] = []  # in argument order: a skip, or a package to add
        for package in packages:
            if not package.is_file():
                raise ArchamiError(f"{package}: no such file")
            if not is_package_file(package):
                raise ArchamiError(f"{package}: not a package file (*.pkg.tar.zst, .xz, .gz ...)")
            info = read_package(package).info
            known = newest.get(info.pkgname)
            if known is not None and vercmp(info.pkgver, known) < 0:
                planned.append(Change(info.pkgname, "skipped", info.pkgver, known, "older than the repository's"))
                continue
            if resign or not _signature(package).exists():
                if signer is None:
                    raise ArchamiError(f"{package.name}: unsigned and no signing key given")
            elif verifier is not None:
                verifier.verify(package, _signature(package))
            newest[info.pkgname] = info.pkgver
            planned.append(package)
        changes = [p if isinstance(p, Change) else _add_one(repo, entries, p, signer, resign) for p in planned]
        repo.write(entries, signer)
    return changes


def _add_one(
    repo: Repository, entries: dict[str, DbEntry], package: Path, signer: Signer | None, resign: bool
) -> Change:
    target = repo.directory / package.name
    needs_signature = resign or not _signature(package).exists()
    if package.resolve() != target.resolve() or needs_signature:
        # Copy and sign under a temporary name, then rename both: a failure (a locked key, a full disk)
        # never leaves a half-added package behind.
        staged = repo.directory / f".archami-add-{package.name}"
        try:
            shutil.copyfile(package, staged)
            if needs_signature:
                assert signer is not None  # checked before anything was copied
                signer.sign(staged)
            else:
                shutil.copyfile(_signature(package), _signature(staged))
            os.replace(_signature(staged), _signature(target))
            os.replace(staged, target)
        finally:
            staged.unlink(missing_ok=True)
            _signature(staged).unlink(missing_ok=True)
    entry = entry_for_package(target)
    current = entries.get(entry.name)
    if current is not None and current.filename != entry.filename:
        _remove_package_file(repo.directory, current.filename)
    entries[entry.name] = entry
    if current is None:
        return Change(entry.name, "added", entry.version)
    action: Literal["upgraded", "replaced"] = "upgraded" if vercmp(entry.version, current.version) > 0 else "replaced"
    return Change(entry.name, action, entry.version, current.version)


def remove_packages(repo: Repository, names: list[str], *, signer: Signer | None = None) -> list[Change]:
    """Remove packages by name (their files too) and rewrite the databases."""
    with repo.locked():
        entries = repo.entries()
        missing = [name for name in names if name not in entries]
        if missing:
            raise ArchamiError(f"not in repository {repo.name}: {', '.join(missing)}")
        changes = []
        for name in names:
            entry = entries.pop(name)
            _remove_package_file(repo.directory, entry.filename)
            changes.append(Change(name, "removed", entry.version))
        repo.write(entries, signer)
    return changes


def verify_repository(repo: Repository, verifier: Verifier) -> list[CheckResult]:
    """Check every signature and checksum; a failed check has ok=False and says what is wrong."""
    checks: list[CheckResult] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append(CheckResult(name=name, ok=ok, detail=detail))

    if not repo.db_path.exists():
        check("database", False, f"{repo.db_path.name} is missing")
        return checks
    databases: dict[str, dict[str, DbEntry]] = {}
    for path, link in ((repo.db_path, "db"), (repo.files_path, "files")):
        try:
            databases[link] = {e.name: e for e in read_db(path)}
        except (SyncDbError, OSError) as exc:
            check(path.name, False, str(exc))
            continue
        check(f"{path.name} signature", *_verified(verifier, path, _signature(path)))
        alias = repo.directory / f"{repo.name}.{link}"
        target = alias.resolve().name if alias.exists() else "nothing"
        check(f"{alias.name} link", alias.resolve() == path.resolve(), f"points to {target}")
    if "db" not in databases or "files" not in databases:
        return checks
    db, files = databases["db"], databases["files"]
    same = {n: e for n, e in db.items() if n in files and e.desc_text() == files[n].desc_text()}
    agree = len(same) == len(db) == len(files)
    check("databases agree", agree, "" if agree else "the .db and .files entries differ")
    for entry in files.values():
        check(entry.filename, *_check_package(repo.directory, entry, verifier))
    listed = {e.filename for e in files.values()}
    strays = sorted(p.name for p in repo.directory.iterdir() if is_package_file(p) and p.name not in listed)
    check("no stray packages", not strays, ", ".join(strays))
    return checks


def _verified(verifier: Verifier, data: Path, sig: Path) -> tuple[bool, str]:
    try:
        return True, f"signed by {verifier.verify(data, sig)}"
    except GpgError as exc:
        return False, str(exc)


def _check_package(directory: Path, entry: DbEntry, verifier: Verifier) -> tuple[bool, str]:
    path = directory / entry.filename
    if not path.is_file():
        return False, "file missing"
    digests = file_digests(path)
    if digests.size != entry.csize:
        return False, f"size {digests.size} != database's {entry.csize}"
    if digests.sha256 != entry.sha256sum:
        return False, "sha256 differs from the database's"
    if entry.md5sum and digests.md5 != entry.md5sum:
        return False, "md5 differs from the database's"
    sig = _signature(path)
    if not entry.pgpsig:
        return False, "no signature in the database"
    if not sig.exists() or sig.read_bytes() != base64.b64decode(entry.pgpsig):
        return False, f"{sig.name} differs from the database's signature"
    ok, detail = _verified(verifier, path, sig)
    if not ok:
        return ok, detail
    try:
        package = read_package(path)
    except PackageError as exc:
        return False, str(exc)
    info = package.info
    if (info.pkgname, info.pkgver, info.arch) != (entry.name, entry.version, entry.arch):
        return False, f".PKGINFO says {info.pkgname} {info.pkgver} {info.arch}"
    if entry.files is not None and package.files != entry.files:
        return False, "file list differs from the .files database"
    return True, detail
