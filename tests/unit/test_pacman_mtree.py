"""Our .MTREE must be what makepkg's `bsdtar --format=mtree` writes for the same tree, byte for byte."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archami.pacman.mtree import mtree_gz, mtree_quote, mtree_text
from archami.pacman.tree import TreeEntry, scan_tree

EPOCH = 1764000000
BSDTAR_MTREE = [
    "bsdtar", "-cnf", "-", "--format=mtree", "--uid", "0", "--gid", "0", "--uname", "root", "--gname", "root",
    "--options=!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link", "--null", "--files-from", "-",
]  # fmt: skip  (makepkg's options; --uid/--gid stand in for fakeroot)


def bsdtar_mtree(root: Path, entries: list[TreeEntry]) -> str:
    assert shutil.which("bsdtar"), "bsdtar is missing: install libarchive-tools (make deps)"
    listing = b"".join(os.fsencode(e.path) + b"\0" for e in entries)
    env = {**os.environ, "LANG": "C", "LC_ALL": "C"}
    out = subprocess.run(BSDTAR_MTREE, cwd=root, input=listing, capture_output=True, check=True, env=env)
    return out.stdout.decode()


def materialize(root: Path, spec: dict[str, tuple[str, int, bytes]]) -> None:
    """spec: path -> (kind, mode, data-or-link-target); parents are created as 0755 directories."""
    for path, (kind, _, data) in sorted(spec.items()):
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dir":
            full.mkdir(exist_ok=True)
        elif kind == "link":
            full.symlink_to(data.decode())
        else:
            full.write_bytes(data)
    # Modes and times last, deepest first, so a directory's mode never blocks creating its children.
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*filenames, *dirnames]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            kind, mode, _ = spec.get(rel, ("dir", 0o755, b""))
            if kind != "link":
                full.chmod(mode)
            os.utime(full, (EPOCH, EPOCH), follow_symlinks=False)


# A leading backslash is left out: bsdtar (and so makepkg) strips it from member names.
_name = st.text(st.sampled_from(list("abcXYZ019._-+@ #=~\\é")), min_size=1, max_size=6).filter(
    lambda n: n not in (".", "..") and not n.startswith((".", "\\"))
)
_file = st.tuples(st.just("file"), st.sampled_from([0o644, 0o755, 0o600, 0o4755, 0o444]), st.binary(max_size=64))
_dir = st.tuples(st.just("dir"), st.sampled_from([0o755, 0o700, 0o750]), st.just(b""))
_link = st.tuples(st.just("link"), st.just(0o777), st.sampled_from([b"target", b"../x y", b"/abs/#="]))


@st.composite
def trees(draw: st.DrawFn) -> dict[str, tuple[str, int, bytes]]:
    spec: dict[str, tuple[str, int, bytes]] = {}
    dirs = [""]
    for _ in range(draw(st.integers(1, 14))):
        parent = draw(st.sampled_from(dirs))
        path = f"{parent}/{draw(_name)}".lstrip("/")
        if path in spec:
            continue
        entry = draw(st.one_of(_file, _dir, _link))
        spec[path] = entry
        if entry[0] == "dir":
            dirs.append(path)
    return spec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_matches_bsdtar_for_generated_trees(spec: dict[str, tuple[str, int, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        materialize(root, spec)
        (root / ".PKGINFO").write_bytes(b"pkgname = x\n")
        (root / ".PKGINFO").chmod(0o644)
        os.utime(root / ".PKGINFO", (EPOCH, EPOCH))
        entries = scan_tree(root)
        assert mtree_text(entries, EPOCH) == bsdtar_mtree(root, entries)


def test_package_like_tree(tmp_path: Path) -> None:
    """A tree shaped like a real package: metadata at the top, mostly 0755 dirs and 0644 files."""
    spec = {
        ".BUILDINFO": ("file", 0o644, b"format = 2\n"),
        ".INSTALL": ("file", 0o644, b"post_install() { :; }\n"),
        ".PKGINFO": ("file", 0o644, b"pkgname = demo\n"),
        "etc/demo.conf": ("file", 0o600, b"secret\n"),
        "usr/bin/demo": ("file", 0o755, b"#!/bin/sh\n"),
        "usr/bin/demo-link": ("link", 0o777, b"demo"),
        "usr/lib/demo/a.py": ("file", 0o644, b"a"),
        "usr/lib/demo/b.py": ("file", 0o644, b"b"),
        "usr/lib/demo/c.py": ("file", 0o644, b"c"),
        "usr/share/empty": ("dir", 0o755, b""),
    }
    materialize(tmp_path, spec)
    entries = scan_tree(tmp_path)
    expected = bsdtar_mtree(tmp_path, entries)
    assert mtree_text(entries, EPOCH) == expected
    assert gzip.decompress(mtree_gz(entries, EPOCH)).decode() == expected


def test_quote_matches_libarchive_rules() -> None:
    assert mtree_quote("a b#c=d\\e") == "a\\040b\\043c\\075d\\134e"
    assert mtree_quote("é") == "\\303\\251"
    assert mtree_quote("~") == "~"
    assert mtree_quote("\x7f\t") == "\\177\\011"
    assert mtree_quote("plain-name_1.2+x@y") == "plain-name_1.2+x@y"
