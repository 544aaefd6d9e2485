"""Package archives: reproducible bytes, makepkg's layout, and readable by bsdtar (libarchive, as pacman)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from archami.errors import ArchamiError
from archami.pacman.archive import PackageError, build_package, payload_digest, read_package
from archami.pacman.compression import open_compressed_read
from archami.pacman.pkginfo import BuildInfo, PkgInfo
from archami.pacman.tree import scan_tree

EPOCH = 1764000000


def make_tree(root: Path, mtime: int) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/bin/tool").write_text("#!/bin/sh\necho hi\n")
    (root / "usr/bin/tool").chmod(0o755)
    (root / "usr/bin/alias").symlink_to("tool")
    (root / "etc/tool.conf").write_text("x = 1\n")
    (root / "etc/tool.conf").chmod(0o644)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.utime(Path(dirpath) / name, (mtime, mtime), follow_symlinks=False)
    for directory in (root, root / "usr", root / "usr/bin", root / "etc"):
        directory.chmod(0o755)
    return root


def info() -> PkgInfo:
    return PkgInfo(pkgname="tool", pkgver="1.2-3", arch="x86_64", pkgdesc="a tool", backup=["etc/tool.conf"])


def buildinfo() -> BuildInfo:
    return BuildInfo(
        pkgname="tool", pkgbase="tool", pkgver="1.2-3", pkgarch="x86_64", pkgbuild_sha256sum="0" * 64,
        packager="p", builddate=0,
    )


def build(tmp: Path, name: str, mtime: int = 1, **kwargs: object) -> Path:
    tree = make_tree(tmp / f"{name}-root", mtime)
    return build_package(tree, info(), tmp / name, source_date_epoch=EPOCH, buildinfo=buildinfo(), **kwargs)  # type: ignore[arg-type]


def test_same_input_same_bytes(tmp_path: Path) -> None:
    first = build(tmp_path, "a", mtime=1)
    second = build(tmp_path, "b", mtime=999999)  # source mtimes must not leak in
    assert first.name == "tool-1.2-3-x86_64.pkg.tar.zst"
    assert first.read_bytes() == second.read_bytes()


def test_layout_owner_and_times(tmp_path: Path) -> None:
    package = build(tmp_path, "a")
    listing = subprocess.run(["bsdtar", "-tf", str(package)], capture_output=True, text=True, check=True).stdout
    assert listing.split() == [
        ".BUILDINFO", ".MTREE", ".PKGINFO", "etc/", "etc/tool.conf", "usr/", "usr/bin/", "usr/bin/alias",
        "usr/bin/tool",
    ]  # fmt: skip
    with open_compressed_read(package) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "root", "root")
            assert member.mtime == EPOCH


def test_read_back(tmp_path: Path) -> None:
    package = build(tmp_path, "a", install_script="post_install() { :; }\n")
    read = read_package(package)
    assert read.info.pkgname == "tool" and read.info.pkgver == "1.2-3"
    assert read.info.size == len("#!/bin/sh\necho hi\n") + len("x = 1\n")  # makepkg's size: file bytes
    assert read.info.builddate == EPOCH
    assert read.info.backup == ["etc/tool.conf"]
    assert read.install_script == "post_install() { :; }\n"
    assert read.files == ["etc/", "etc/tool.conf", "usr/", "usr/bin/", "usr/bin/alias", "usr/bin/tool"]
    assert read.has_mtree


def test_mtree_member_matches_bsdtar_on_extracted_package(tmp_path: Path) -> None:
    package = build(tmp_path, "a", install_script="post_install() { :; }\n")
    extracted = tmp_path / "x"
    extracted.mkdir()
    subprocess.run(["bsdtar", "-xpf", str(package), "-C", str(extracted)], check=True)
    ours = gzip.decompress((extracted / ".MTREE").read_bytes()).decode()
    (extracted / ".MTREE").unlink()
    entries = scan_tree(extracted)
    listing = b"".join(os.fsencode(e.path) + b"\0" for e in entries)
    theirs = subprocess.run(
        ["bsdtar", "-cnf", "-", "--format=mtree", "--uid", "0", "--gid", "0",
         "--options=!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link", "--null", "--files-from", "-"],
        cwd=extracted, input=listing, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    assert ours == theirs


@pytest.mark.parametrize(("compression", "suffix"), [("gzip", ".gz"), ("xz", ".xz"), ("bzip2", ".bz2"), ("none", "")])
def test_other_compressions(tmp_path: Path, compression: str, suffix: str) -> None:
    package = build(tmp_path, "a", compression=compression)
    assert package.name.endswith(f".pkg.tar{suffix}")
    assert read_package(package).files[-1] == "usr/bin/tool"
    assert "usr/bin/tool" in subprocess.run(["bsdtar", "-tf", str(package)], capture_output=True, text=True).stdout


def test_reserved_and_special_files_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r", 1)
    (root / ".hidden").write_text("x")
    with pytest.raises(PackageError, match="reserved"):
        build_package(root, info(), tmp_path / "o", source_date_epoch=EPOCH)
    (root / ".hidden").unlink()
    os.mkfifo(root / "etc/fifo")
    with pytest.raises(ArchamiError, match="only files, directories and symlinks"):
        build_package(root, info(), tmp_path / "o", source_date_epoch=EPOCH)


def test_not_a_package(tmp_path: Path) -> None:
    junk = tmp_path / "junk-1-1-any.pkg.tar.zst"
    junk.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(64))
    with pytest.raises(PackageError):
        read_package(junk)
    plain = tmp_path / "plain.pkg.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(make_tree(tmp_path / "t", 1) / "etc", arcname="etc")
    with pytest.raises(PackageError, match=r"no \.PKGINFO"):
        read_package(plain)


def test_payload_digest_ignores_buildinfo_only(tmp_path: Path) -> None:
    first = build(tmp_path, "a")
    other = buildinfo()
    other.buildtoolver = "9.9"
    tree = make_tree(tmp_path / "c-root", 1)
    second = build_package(tree, info(), tmp_path / "c", source_date_epoch=EPOCH, buildinfo=other)
    assert first.read_bytes() != second.read_bytes()
    assert payload_digest(first) == payload_digest(second)
    (tree / "etc/tool.conf").write_text("x = 2\n")
    third = build_package(tree, info(), tmp_path / "d", source_date_epoch=EPOCH, buildinfo=buildinfo())
    assert payload_digest(third) != payload_digest(first)


def test_bsdtar_present() -> None:
    assert shutil.which("bsdtar"), "bsdtar is missing: install libarchive-tools (make deps)"
