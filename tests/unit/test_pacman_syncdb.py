"""Sync database entries and files: repo-add's keys and order, round trips, and what must be refused."""

from __future__ import annotations

import base64
import hashlib
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archami.pacman.archive import build_package
from archami.pacman.compression import open_compressed_read
from archami.pacman.pkginfo import PkgInfo
from archami.pacman.syncdb import (
    DESC_ORDER,
    DbEntry,
    SyncDbError,
    entry_for_package,
    entry_from_desc,
    parse_desc,
    read_db,
    write_db,
)

EPOCH = 1764000000


def package(tmp: Path, name: str = "demo", version: str = "1.0-1", **fields: object) -> Path:
    root = tmp / f"{name}-{version}-root"
    (root / "usr/share" / name).mkdir(parents=True)
    (root / "usr/share" / name / "data").write_text(f"{name} {version}\n")
    info = PkgInfo(pkgname=name, pkgver=version, arch="any", **fields)  # type: ignore[arg-type]
    return build_package(root, info, tmp / "pkgs", source_date_epoch=EPOCH)


def test_entry_for_package(tmp_path: Path) -> None:
    pkg = package(
        tmp_path, pkgdesc="a   demo\tpackage", depends=["glibc", "bash>=5"], optdepends=["python:  scripts"],
        license=["MIT"], groups=["ec2"], provides=["demo-api=1"], conflicts=["old-demo"], replaces=["old-demo"],
    )  # fmt: skip
    raw_sig = b"\x89\x01\x33" + bytes(60)
    pkg.with_name(pkg.name + ".sig").write_bytes(raw_sig)
    entry = entry_for_package(pkg)
    data = pkg.read_bytes()
    assert entry.filename == pkg.name and entry.name == "demo" and entry.base == "demo" and entry.version == "1.0-1"
    assert entry.desc == "a demo package"  # whitespace runs collapse, as in repo-add
    assert entry.optdepends == ["python: scripts"]
    assert entry.csize == len(data) and entry.isize == len("demo 1.0-1\n")
    assert entry.md5sum == hashlib.md5(data).hexdigest()
    assert entry.sha256sum == hashlib.sha256(data).hexdigest()
    assert base64.b64decode(entry.pgpsig) == raw_sig
    assert entry.builddate == EPOCH and entry.arch == "any"
    assert entry.files == ["usr/", "usr/share/", "usr/share/demo/", "usr/share/demo/data"]


def test_desc_order_and_empty_keys(tmp_path: Path) -> None:
    entry = entry_for_package(package(tmp_path, depends=["a"]))
    keys = [line.strip("%") for line in entry.desc_text().splitlines() if line.startswith("%")]
    assert keys == [k for k in (k.upper() for k in DESC_ORDER) if k in keys]
    assert "PGPSIG" not in keys and "URL" not in keys and "GROUPS" not in keys  # empty: not written
    assert keys[:4] == ["FILENAME", "NAME", "BASE", "VERSION"]
    assert entry.desc_text().endswith("%DEPENDS%\na\n\n")
    assert entry.files_text().startswith("%FILES%\nusr/\n")


def test_desc_round_trip_keeps_unknown_keys() -> None:
    text = "%FILENAME%\na-1-1-any.pkg.tar.zst\n\n%NAME%\na\n\n%VERSION%\n1-1\n\n%CSIZE%\n10\n\n%NEWKEY%\nx\ny\n\n"
    entry = entry_from_desc(parse_desc(text), None)
    assert entry.extra == {"NEWKEY": ["x", "y"]}
    assert entry_from_desc(parse_desc(entry.desc_text()), None) == entry


@pytest.mark.parametrize(
    "text",
    ["%NAME%\na\n\n%VERSION%\n1-1\n\n", "%FILENAME%\nf\n\n%NAME%\na\n\n%VERSION%\n1\n\n%CSIZE%\nbig\n\n", "junk\n"],
)
def test_bad_desc_refused(text: str) -> None:
    with pytest.raises(SyncDbError):
        entry_from_desc(parse_desc(text), None)


@pytest.mark.parametrize("suffix", [".zst", ".gz", ".xz", ""])
def test_write_read_round_trip(tmp_path: Path, suffix: str) -> None:
    entries = [entry_for_package(package(tmp_path, n)) for n in ("b-pkg", "a-pkg")]
    db = tmp_path / f"repo.files.tar{suffix}"
    write_db(db, entries, with_files=True)
    assert read_db(db) == sorted(entries, key=lambda e: e.name)
    with open_compressed_read(db) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        names = [(m.name, m.mtime, m.uid) for m in tar]
    assert [n for n, _, _ in names] == [
        "a-pkg-1.0-1", "a-pkg-1.0-1/desc", "a-pkg-1.0-1/files", "b-pkg-1.0-1", "b-pkg-1.0-1/desc",
        "b-pkg-1.0-1/files",
    ]  # fmt: skip
    assert {(t, u) for _, t, u in names} == {(EPOCH, 0)}  # newest build date, root: reproducible


def test_db_without_files_and_same_bytes(tmp_path: Path) -> None:
    entries = [entry_for_package(package(tmp_path))]
    first, second = tmp_path / "one.db.tar.zst", tmp_path / "two.db.tar.zst"
    write_db(first, entries, with_files=False)
    write_db(second, entries, with_files=False)
    assert first.read_bytes() == second.read_bytes()
    read = read_db(first)
    assert read[0].files is None and read[0].sha256sum == entries[0].sha256sum


def test_files_db_needs_file_lists(tmp_path: Path) -> None:
    with pytest.raises(SyncDbError):
        write_db(tmp_path / "x.files.tar.gz", [DbEntry(filename="f", name="a", version="1-1")], with_files=True)


def test_armored_or_huge_signatures_refused(tmp_path: Path) -> None:
    pkg = package(tmp_path)
    sig = pkg.with_name(pkg.name + ".sig")
    sig.write_text("-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n")
    with pytest.raises(SyncDbError, match="armored"):
        entry_for_package(pkg)
    sig.write_bytes(bytes(16385))
    with pytest.raises(SyncDbError, match="too big"):
        entry_for_package(pkg)


def test_unreadable_db(tmp_path: Path) -> None:
    bad = tmp_path / "x.db.tar.gz"
    bad.write_bytes(b"\x1f\x8bnot gzip at all")
    with pytest.raises(SyncDbError):
        read_db(bad)


_line = st.text(st.characters(exclude_characters="\n", exclude_categories=["Cs"]), max_size=12)
_item = _line.filter(bool)
_SCALARS = ("base", "desc", "md5sum", "sha256sum", "pgpsig", "url", "arch", "packager")
_LISTS = ("groups", "license", "depends", "optdepends")


@settings(max_examples=200, deadline=None)
@given(
    scalars=st.fixed_dictionaries({k: _line for k in _SCALARS}),
    lists=st.fixed_dictionaries({k: st.lists(_item, max_size=3) for k in _LISTS}),
    numbers=st.tuples(st.integers(0, 2**40), st.integers(0, 2**40), st.integers(0, 2**33)),
    names=st.tuples(_item, _item, _item),
)
def test_desc_text_round_trips(
    scalars: dict[str, str], lists: dict[str, list[str]], numbers: tuple[int, int, int], names: tuple[str, str, str]
) -> None:
    """Whatever a desc entry holds (no newlines, no empty list items) reads back the same: unusual line
    breaks like U+2028 or \\r stay inside their value, as they do for pacman, which splits on \\n only."""
    entry = DbEntry(filename=names[0], name=names[1], version=names[2], csize=numbers[0], isize=numbers[1],
                    builddate=numbers[2], **scalars, **lists)  # type: ignore[arg-type]  # fmt: skip
    assert entry_from_desc(parse_desc(entry.desc_text()), None) == entry
