"""Databases written by archami and by `repo-add` from the same packages must list the same fields and
values, byte for byte; and each tool must read the other's databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from repo_support import require_tools, stop_agent

from archami.pacman.archive import build_package
from archami.pacman.compression import open_compressed_read
from archami.pacman.gpg import Gpg, Verifier
from archami.pacman.pkginfo import PkgInfo
from archami.pacman.repo import Repository, Signer, add_packages
from archami.pacman.syncdb import entry_for_package, read_db, write_db

pytestmark = pytest.mark.integration
EPOCH = 1764000000

MAKEPKG_PKGBUILD = """\
pkgname=mkdemo
pkgver=2.0
pkgrel=3
epoch=1
pkgdesc="made   by makepkg"
arch=(any)
url="https://example.invalid/mkdemo"
license=(MIT custom)
depends=('bash>=5' glibc)
optdepends=('python: for scripts')
provides=(mkdemo-api)
backup=(etc/mkdemo.conf)
package() {
  install -Dm644 /dev/null "$pkgdir/etc/mkdemo.conf"
  install -Dm755 /dev/null "$pkgdir/usr/bin/mkdemo"
  ln -s mkdemo "$pkgdir/usr/bin/mkd"
}
"""


@dataclass
class Packages:
    directory: Path
    files: list[Path]
    gpg: Gpg
    key: str
    home: Path


def _archami_package(tmp: Path, out: Path, info: PkgInfo, files: dict[str, str], compression: str) -> Path:
    root = tmp / f"{info.pkgname}-root"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return build_package(root, info, out, source_date_epoch=EPOCH, compression=compression)


def _makepkg_package(out: Path) -> Path:
    """A package made by makepkg itself (which refuses root: run it as nobody, in a directory of its own
    outside pytest's root-only temporary tree)."""
    work = Path(tempfile.mkdtemp(prefix="archami-makepkg-"))
    (work / "PKGBUILD").write_text(MAKEPKG_PKGBUILD)
    for path in (work, work / "PKGBUILD"):
        shutil.chown(path, "nobody", "nogroup")
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "PKGEXT": ".pkg.tar.zst", "LC_ALL": "C",
           "SOURCE_DATE_EPOCH": str(EPOCH), "PACKAGER": "Make Packager <make@example.invalid>"}  # fmt: skip
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "makepkg", "--nodeps", "--noconfirm"]
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        built = next(work.glob("mkdemo-*.pkg.tar.zst"))
        return Path(shutil.copy(built, out / built.name))
    finally:
        shutil.rmtree(work)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packages]:
    assert os.geteuid() == 0, "makepkg runs as nobody via setpriv, which needs root"
    require_tools("repo-add", "repo-remove", "makepkg", "fakeroot", "setpriv", "bsdtar", "gpg")
    tmp = tmp_path_factory.mktemp("addcompat")
    out = tmp / "packages"
    out.mkdir()
    rich = PkgInfo(
        pkgname="rich-demo", pkgver="3.1.4-2", arch="x86_64", pkgdesc="a  demo\twith   spaces",
        url="https://example.invalid/rich", packager="Archami Tests <tests@example.invalid>",
        license=["MIT", "Apache-2.0"], groups=["ec2", "demo"], replaces=["old-demo"], conflicts=["old-demo<3"],
        provides=["demo-api=3", "libdemo.so=1-64"], backup=["etc/rich.conf"], depends=["glibc>=2.38", "zlib"],
        optdepends=["python:  for the scripts", "bash: completions"], makedepends=["cmake"], checkdepends=["check"],
    )  # fmt: skip
    files = [
        _archami_package(tmp, out, rich, {"etc/rich.conf": "a=1\n", "usr/share/rich/file name é.txt": "x"}, "zstd"),
        _archami_package(tmp, out, PkgInfo(pkgname="plain", pkgver="1-1", arch="any"), {"usr/share/p": "p"}, "gzip"),
        _archami_package(tmp, out, PkgInfo(pkgname="xz-demo", pkgver="0.1-1", arch="any"), {"opt/x": "x"}, "xz"),
        _makepkg_package(out),
    ]
    home = tmp / "gnupg"
    with Gpg(home) as gpg:
        key = gpg.generate_key("Compat Tests <compat@example.invalid>")
        yield Packages(out, files, gpg, key, home)


def _copy(packages: Packages, target: Path, signed: bool) -> list[Path]:
    """Copies of the packages, with the same signatures (made once) when `signed`."""
    target.mkdir(parents=True)
    copies = []
    for package in packages.files:
        copy = Path(shutil.copy(package, target / package.name))
        if signed:
            sig = package.with_name(package.name + ".sig")
            if not sig.exists():
                packages.gpg.sign_detached(package, packages.key)
            shutil.copy(sig, target / sig.name)
        copies.append(copy)
    return copies


def _repo_add(db: Path, files: list[Path], home: Path | None, key: str | None = None) -> None:
    # A UTF-8 locale, as maintainers have: under plain C, bsdtar escapes non-ASCII file names as octal.
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    command = ["repo-add", "--quiet", str(db), *map(str, files)]
    if home is not None and key is not None:
        env["GNUPGHOME"] = str(home)
        command[1:1] = ["--sign", "--key", key]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if home is not None:
        stop_agent(home)
    assert result.returncode == 0, result.stdout + result.stderr


def _members(db: Path) -> dict[str, bytes]:
    """Every file in a database tarball: 'name-version/desc' -> bytes."""
    found = {}
    with open_compressed_read(db) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is not None:
                found[member.name] = extracted.read()
    return found


def _assert_same(ours: Path, theirs: Path) -> None:
    our_members, their_members = _members(ours), _members(theirs)
    assert sorted(our_members) == sorted(their_members)
    for name, data in their_members.items():
        assert our_members[name].decode() == data.decode(), name
    assert read_db(ours) == read_db(theirs)


def test_signed_repository_same_as_repo_add(packages: Packages, tmp_path: Path) -> None:
    theirs = _copy(packages, tmp_path / "theirs", signed=True)
    _repo_add(tmp_path / "theirs/test.db.tar.gz", theirs, packages.home, packages.key)
    ours = _copy(packages, tmp_path / "ours", signed=True)
    add_packages(Repository(tmp_path / "ours", "test", "gzip"), ours, signer=Signer(packages.gpg, packages.key))
    for kind in ("db", "files"):
        _assert_same(tmp_path / f"ours/test.{kind}.tar.gz", tmp_path / f"theirs/test.{kind}.tar.gz")
    assert os.readlink(tmp_path / "ours/test.db") == os.readlink(tmp_path / "theirs/test.db")
    entries = {e.name: e for e in read_db(tmp_path / "ours/test.files.tar.gz")}
    assert entries["mkdemo"].version == "1:2.0-3"
    assert entries["mkdemo"].packager == "Make Packager <make@example.invalid>"
    assert entries["rich-demo"].optdepends == ["python: for the scripts", "bash: completions"]
    assert "usr/share/rich/file name é.txt" in (entries["rich-demo"].files or [])
    assert all(e.pgpsig for e in entries.values())
    exported = tmp_path / "key.asc"
    exported.write_text(packages.gpg.export_armored([packages.key]))
    with Verifier([exported]) as verifier:  # both tools' database signatures check out
        for side in ("ours", "theirs"):
            assert verifier.verify(tmp_path / f"{side}/test.db.tar.gz", tmp_path / f"{side}/test.db.tar.gz.sig")


def test_unsigned_entries_same_as_repo_add(packages: Packages, tmp_path: Path) -> None:
    theirs = _copy(packages, tmp_path / "theirs", signed=False)
    _repo_add(tmp_path / "theirs/test.db.tar.zst", theirs, None)
    ours = _copy(packages, tmp_path / "ours", signed=False)
    entries = [entry_for_package(p) for p in ours]
    write_db(tmp_path / "ours/test.db.tar.zst", entries, with_files=False)
    write_db(tmp_path / "ours/test.files.tar.zst", entries, with_files=True)
    for kind in ("db", "files"):
        _assert_same(tmp_path / f"ours/test.{kind}.tar.zst", tmp_path / f"theirs/test.{kind}.tar.zst")
    assert not any(e.pgpsig for e in read_db(tmp_path / "ours/test.db.tar.zst"))


def test_repo_add_and_repo_remove_accept_our_database(packages: Packages, tmp_path: Path) -> None:
    copies = _copy(packages, tmp_path / "ours", signed=True)
    repo = Repository(tmp_path / "ours", "test", "zstd")
    add_packages(repo, copies[:2], signer=Signer(packages.gpg, packages.key))
    before = {e.name: e.desc_text() for e in read_db(repo.files_path)}
    _repo_add(repo.db_path, copies[2:], packages.home, packages.key)  # repo-add extends our database
    after = {e.name: e.desc_text() for e in read_db(repo.files_path)}
    assert {n: after[n] for n in before} == before
    assert set(after) == {"rich-demo", "plain", "xz-demo", "mkdemo"}
    result = subprocess.run(["repo-remove", "--quiet", str(repo.db_path), "plain"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "plain" not in {e.name for e in read_db(repo.db_path)}
