"""Repository bookkeeping without gpg: naming, newest-version-wins, file removal, locking, refusals.

Packages here arrive with ready-made (opaque) .sig files, so no signing is needed; signing and checking
signatures is covered with real gpg in tests/integration/test_repo_manage.py.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from archami.errors import ArchamiError
from archami.pacman.archive import build_package
from archami.pacman.pkginfo import PkgInfo
from archami.pacman.repo import Repository, add_packages, remove_packages
from archami.pacman.syncdb import read_db


def package(tmp: Path, name: str, version: str, signed: bool = True) -> Path:
    root = tmp / f"src-{name}-{version}"
    (root / "opt" / name).mkdir(parents=True, exist_ok=True)
    (root / "opt" / name / "v").write_text(version)
    built = build_package(root, PkgInfo(pkgname=name, pkgver=version, arch="any"), tmp / "in", source_date_epoch=1)
    if signed:
        built.with_name(built.name + ".sig").write_bytes(b"\x88" + version.encode())
    return built


def names_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if not p.name.startswith(".")}


def test_newest_version_wins_and_old_files_go(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo", "ec2")
    changes = add_packages(repo, [package(tmp_path, "a", "1.0-1"), package(tmp_path, "b", "2-1")])
    assert [(c.name, c.action) for c in changes] == [("a", "added"), ("b", "added")]
    changes = add_packages(repo, [package(tmp_path, "a", "1.0a-1"), package(tmp_path, "a", "1.0.1-1")])
    assert [(c.action, c.version, c.previous) for c in changes] == [
        ("skipped", "1.0a-1", "1.0-1"), ("upgraded", "1.0.1-1", "1.0-1"),
    ]  # fmt: skip
    entries = {e.name: e for e in read_db(repo.db_path)}
    assert entries["a"].version == "1.0.1-1"
    assert base64.b64decode(entries["a"].pgpsig) == b"\x881.0.1-1"  # the arriving signature, embedded
    assert names_in(repo.directory) == {
        "a-1.0.1-1-any.pkg.tar.zst", "a-1.0.1-1-any.pkg.tar.zst.sig", "b-2-1-any.pkg.tar.zst",
        "b-2-1-any.pkg.tar.zst.sig", "ec2.db", "ec2.db.tar.zst", "ec2.files", "ec2.files.tar.zst",
    }  # fmt: skip  (no signer: the databases are unsigned and have no .sig)
    assert os.readlink(repo.directory / "ec2.db") == "ec2.db.tar.zst"


def test_several_versions_in_one_call(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo")
    newer, older = package(tmp_path, "a", "2-1"), package(tmp_path, "a", "1-1")
    changes = add_packages(repo, [older, newer, package(tmp_path, "a", "1.5-1")])
    assert [(c.action, c.version) for c in changes] == [("added", "1-1"), ("upgraded", "2-1"), ("skipped", "1.5-1")]
    assert {e.version for e in read_db(repo.db_path)} == {"2-1"}
    assert not (repo.directory / older.name).exists()


def test_open_reads_name_and_compression(tmp_path: Path) -> None:
    directory = tmp_path / "repo"
    add_packages(Repository(directory, "custom", "gzip"), [package(tmp_path, "a", "1-1")])
    opened = Repository.open(directory)
    assert (opened.name, opened.compression) == ("custom", "gzip")
    assert Repository.open(tmp_path / "empty").name == "ec2"
    add_packages(Repository(directory, "second", "zstd"), [package(tmp_path, "b", "1-1")])
    with pytest.raises(ArchamiError, match="several databases"):
        Repository.open(directory)


def test_refusals_change_nothing(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo")
    add_packages(repo, [package(tmp_path, "a", "1-1")])
    before = {p.name: p.read_bytes() for p in repo.directory.iterdir() if p.is_file() and not p.is_symlink()}
    with pytest.raises(ArchamiError, match="unsigned"):
        add_packages(repo, [package(tmp_path, "b", "1-1"), package(tmp_path, "c", "1-1", signed=False)])
    with pytest.raises(ArchamiError, match="no such file"):
        add_packages(repo, [tmp_path / "missing.pkg.tar.zst"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ArchamiError, match="not a package"):
        add_packages(repo, [tmp_path / "notes.txt"])
    with pytest.raises(ArchamiError, match="zzz"):
        remove_packages(repo, ["a", "zzz"])
    after = {p.name: p.read_bytes() for p in repo.directory.iterdir() if p.is_file() and not p.is_symlink()}
    assert after == before


def test_remove(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo")
    add_packages(repo, [package(tmp_path, "a", "1-1"), package(tmp_path, "b", "1-1")])
    assert [c.action for c in remove_packages(repo, ["a"])] == ["removed"]
    assert [e.name for e in read_db(repo.files_path)] == ["b"]
    assert not any(p.name.startswith("a-") for p in repo.directory.iterdir())


def test_lock_is_exclusive(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo")
    with repo.locked(), pytest.raises(ArchamiError, match="another archami"):
        add_packages(repo, [package(tmp_path, "a", "1-1")])
