"""The shaped repositories: packages signed with a test key, `repo-add`-compatible databases, in two layouts.

    OUT/repo/{core,extra}/x86_64/        one directory per repository (like archami's `ec2` repository)
    OUT/mirror/{core,extra}/os/x86_64/   the same files laid out as an Arch mirror ($repo/os/$arch)
    OUT/keyring/                         archlinux.gpg, archlinux-trusted, archlinux-revoked (the test key)

The signing key is trusted the way Arch's is: it is the key in the shaped `archlinux-keyring` package.
Everything is built once into the cache, keyed by the Debian packages and by this code; later builds
hard-link the cached tree into OUT.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from archami.pacman import compression
from archami.pacman.gpg import Gpg
from archami.pacman.repo import Repository, Signer, add_packages

from . import catalog, convert, debs

LOG = logging.getLogger("archshaped")
KEY_UID = "archami shaped test repository <archshaped@archami.invalid>"
REPOSITORIES = ("core", "extra")
MIRROR_TEMPLATE = "mirror/$repo/os/$arch"
REPO_TEMPLATE = "repo/$repo/$arch"
# makepkg's zstd -19 costs minutes on ~400 MB of test packages; level 3 packs them in seconds, and
# pacman reads any level. (A module constant of archami.pacman.compression, read on every write.)
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class ShapedRepository:
    root: Path
    fingerprint: str
    timings: dict[str, float]

    @property
    def keyring(self) -> Path:
        return self.root / "keyring"

    @property
    def keyring_package(self) -> Path:
        """The shaped archlinux-keyring package file (signed by the test key, which no host trusts)."""
        return next((self.root / "repo" / "core" / convert.ARCH).glob("archlinux-keyring-*.pkg.tar.zst"))

    def keyring_pin(self) -> str:
        """What to export as $ARCHAMI_ARCH_KEYRING so a build trusts this keyring package by its checksum."""
        return "sha256:" + hashlib.sha256(self.keyring_package.read_bytes()).hexdigest()

    def mirror_url(self, base: str) -> str:
        """The $repo/os/$arch server line under `base` (file://OUT or http://127.0.0.1:PORT)."""
        return f"{base.rstrip('/')}/{MIRROR_TEMPLATE}"


def signing_key(cache: Path) -> tuple[Gpg, str]:
    """The test signing key, made once and kept in the cache (so warm builds reuse signed packages)."""
    gpg = Gpg(cache / "gnupg")
    found = gpg.secret_fingerprints()
    if found:
        return gpg, found[0]
    return gpg, gpg.generate_key(KEY_UID)


def key_files(gpg: Gpg, fingerprint: str) -> dict[str, bytes]:
    return {
        "archlinux.gpg": gpg.export_armored([fingerprint]).encode(),
        "archlinux-trusted": f"{fingerprint}:4:\n".encode(),
        "archlinux-revoked": b"",
    }


def code_digest() -> str:
    """A digest of this package's code and assets: a changed conversion rebuilds the cached repository."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    sources = [p for p in here.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(p for p in sources if not p.name.startswith("test_")):  # the tests are not inputs
        digest.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _build_one(args: tuple[convert.Plan, Path, Path, dict[str, bytes]]) -> Path:
    compression.ZSTD_LEVEL = ZSTD_LEVEL
    return convert.build_one(*args)


def build_tree(cache: Path, target: Path, workers: int = 2) -> dict[str, float]:
    """Fetch, convert, sign and index everything into `target` (a new directory)."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    debs_dir = debs.fetch(cache)
    closure = debs.read_all(debs_dir)
    timings["fetch"] = time.monotonic() - started
    plans = convert.plan(closure, pkgrel=f"1.{int(code_digest()[:6], 16) % 100000}")
    gpg, fingerprint = signing_key(cache)
    keys = key_files(gpg, fingerprint)
    packages_dir = target / "packages"
    work = Path(tempfile.mkdtemp(prefix="stage-", dir=target))
    started = time.monotonic()
    try:
        jobs = [(p, work, packages_dir, keys) for p in sorted(plans.values(), key=lambda p: -_size(p))]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            built = dict(zip([p.name for p, *_ in jobs], pool.map(_build_one, jobs), strict=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timings["convert"] = time.monotonic() - started
    started = time.monotonic()
    signer = Signer(gpg, fingerprint)
    for name in REPOSITORIES:
        members = [path for pkg, path in sorted(built.items()) if (pkg in catalog.EXTRA) == (name == "extra")]
        add_packages(Repository(target / "repo" / name / convert.ARCH, name), members, signer=signer)
    gpg.stop_agent()
    shutil.rmtree(packages_dir)
    for name in REPOSITORIES:
        _link_tree(target / "repo" / name / convert.ARCH, target / "mirror" / name / "os" / convert.ARCH)
    (target / "keyring").mkdir()
    for file_name, data in keys.items():
        (target / "keyring" / file_name).write_bytes(data)
    timings["sign+index"] = time.monotonic() - started
    return timings


def _size(package: convert.Plan) -> int:
    return sum(d.path.stat().st_size for d in package.debs)


def _link_tree(source: Path, dest: Path) -> None:
    """Hard-link (or copy, across filesystems) a tree, keeping symlinks as symlinks."""
    for dirpath, _dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            src, dst = Path(dirpath) / name, dest / rel / name
            if src.is_symlink():
                dst.symlink_to(os.readlink(src))
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


def _prune(cache: Path, keep: set[str]) -> None:
    """Drop trees of earlier inputs (each ~100 MiB): only the current debs and repository are kept."""
    for path in [*cache.glob("repo-*"), *cache.glob("debs-*")]:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def make(out: Path, cache: Path | None = None) -> ShapedRepository:
    """Build (or reuse from the cache) the shaped repositories into `out`."""
    cache = cache or debs.default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    # Two test files use the shaped repository and may start together on a cold cache (two pytest workers):
    # one makes the signing key, fetches and converts while the other waits, then both take the same tree.
    with (cache / ".make.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _make_locked(out, cache)


def _make_locked(out: Path, cache: Path) -> ShapedRepository:
    _, fingerprint = signing_key(cache)
    key = hashlib.sha256(f"{debs.cache_key()}-{code_digest()}-{fingerprint}".encode()).hexdigest()[:16]
    cached = cache / f"repo-{key}"
    timings: dict[str, float] = {}
    if not (cached / ".complete").is_file():
        staging = Path(tempfile.mkdtemp(prefix=".repo-", dir=cache))
        try:
            timings = build_tree(cache, staging)
            (staging / ".complete").write_text("ok\n")
            try:
                os.replace(staging, cached)
            except OSError:
                if not (cached / ".complete").is_file():  # else a concurrent build finished first: use it
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _prune(cache, keep={cached.name, debs.fetch(cache).name})
    started = time.monotonic()
    for part in ("repo", "mirror", "keyring"):
        if (out / part).exists():
            shutil.rmtree(out / part)
        _link_tree(cached / part, out / part)
    timings["link"] = time.monotonic() - started
    return ShapedRepository(out, fingerprint, timings)
