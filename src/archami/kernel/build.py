"""`archami kernel build`: a Linux source tarball in, Debian and pacman kernel packages out.

    tarball --tar-> scratch tree --configure (base + fragment, checked)--> .config
        --make bindeb-pkg (nice, reproducible env)--> linux-image/linux-headers .debs
        --repack--> linux-ec2 + linux-ec2-headers .pkg.tar.zst      --dpkg-deb--> linux-ec2 metapackages
        --> cache/<key>/ --> DIR (packages, config-<release>, kernel-build.json)

A build is cached under its inputs' digest: the source's sha256, the fragment, the base configuration,
the compiler's version, the package name, pkgrel and the timestamp the build is stamped with. The same
inputs give the same files (the kernel is built with KBUILD_BUILD_TIMESTAMP/USER/HOST/VERSION and
SOURCE_DATE_EPOCH fixed), so a cache hit is exactly what a rebuild would make.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from archami.errors import ArchamiError
from archami.kernel.archpkg import ArchKernel
from archami.kernel.configure import BaseConfig, configure
from archami.kernel.debpkg import DEB_ARCH, build_metapackage, extract_deb, read_deb
from archami.kernel.fragment import parse_config
from archami.runner import run

# Bump when archami changes how it builds or packages kernels in a way the inputs do not show.
BUILD_FORMAT = 1
DEFAULT_CACHE = Path("/var/cache/archami/kernel")
RECORD_NAME = "kernel-build.json"
PACKAGER = "archami kernel build <kernel@archami.invalid>"
KEEP_SCRATCH_ENV = "ARCHAMI_KEEP_KERNEL_SCRATCH"  # set: a failed build leaves its tree to look at
KEEP_BUILDS = 4  # cached builds kept (least recently used go first); each is ~100-200 MB


@dataclass(frozen=True)
class KernelRequest:
    source: Path
    base: BaseConfig
    fragment: Path
    pkgbase: str = "linux-ec2"
    pkgrel: int = 1
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    niceness: int = 10
    epoch: int | None = None  # None: $SOURCE_DATE_EPOCH, else the tarball's mtime

    def build_epoch(self) -> int:
        if self.epoch is not None:
            return self.epoch
        value = os.environ.get("SOURCE_DATE_EPOCH", "")
        if value.isdigit():
            return int(value)
        # dpkg installs files with the mtimes in the package, so an installed linux-source tarball's mtime
        # is the same on every machine with that package version.
        return int(self.source.stat().st_mtime)


@dataclass
class KernelBuild:
    """What a build made (kernel-build.json in the cache and in DIR)."""

    release: str  # uname -r
    version: str  # upstream version, e.g. 6.1.192
    pkgbase: str
    pkgrel: int
    inputs: dict[str, str]
    key: str
    config_file: str
    files: dict[str, int]  # file name -> bytes
    compile_seconds: float
    total_seconds: float
    cached: bool = False
    directory: str = ""

    def files_of(self, suffix: str) -> list[str]:
        return sorted(name for name in self.files if name.endswith(suffix))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compiler_version(log: logging.Logger) -> str:
    return run(["gcc", "--version"], log, capture=True).splitlines()[0].strip()


def build_inputs(request: KernelRequest, compiler: str) -> dict[str, str]:
    """Everything that determines the build's output. Pure but for hashing the files it names."""
    base = "defconfig" if request.base.text is None else hashlib.sha256(request.base.text.encode()).hexdigest()
    return {
        "format": str(BUILD_FORMAT),
        "source_sha256": sha256_file(request.source),
        "fragment_sha256": sha256_file(request.fragment),
        "base_config": f"{request.base.name}:{base}",
        "compiler": compiler,
        "pkgbase": request.pkgbase,
        "pkgrel": str(request.pkgrel),
        "epoch": str(request.build_epoch()),
    }


def inputs_key(inputs: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def reproducible_env(epoch: int, pkgrel: int) -> dict[str, str]:
    """What Documentation/kbuild/reproducible-builds.rst asks for, plus a fixed locale and zone."""
    stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(epoch))
    return {
        "SOURCE_DATE_EPOCH": str(epoch),
        "KBUILD_BUILD_TIMESTAMP": stamp,
        "KBUILD_BUILD_USER": "archami",
        "KBUILD_BUILD_HOST": "archami",
        "KBUILD_BUILD_VERSION": str(pkgrel),
        "LC_ALL": "C",
        "TZ": "UTC",
    }


def build_kernel(request: KernelRequest, out: Path, log: logging.Logger, cache: Path = DEFAULT_CACHE) -> KernelBuild:
    """Build (or take from the cache) the kernel packages for `request`, and copy them into `out`."""
    if not request.source.is_file():
        raise ArchamiError(f"{request.source}: no such source tarball")
    started = time.monotonic()
    inputs = build_inputs(request, compiler_version(log))
    key = inputs_key(inputs)
    entry = cache / key[:24]
    with _build_lock(cache, key, log):
        # Checked under the lock: a second archami asking for the same kernel waits for the first and
        # then takes its result (two test workers, `make -j`, two definitions of one release).
        if (entry / RECORD_NAME).is_file():
            log.info("kernel build %s: unchanged inputs, reusing %s", key[:24], entry)
            record = _read_record(entry)
            record.cached = True
            os.utime(entry)  # recently used
        else:
            record = _build_into_cache(request, inputs, key, entry, log)
    out.mkdir(parents=True, exist_ok=True)
    for name in [*record.files, record.config_file]:
        shutil.copyfile(entry / name, out / name)
    record.total_seconds = round(time.monotonic() - started, 1)
    record.directory = str(out)
    (out / RECORD_NAME).write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record


@contextmanager
def _build_lock(cache: Path, key: str, log: logging.Logger) -> Iterator[None]:
    """One builder per kernel key at a time; the others wait (a compile takes 10-60 min, so waiting is what a
    second caller wants, as apt and make do). The lock file is never removed: a waiter holds the file it
    opened, and removing it would let a third process lock a new file of the same name beside the first."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f".lock-{key[:24]}").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("kernel build %s: another archami is building it, waiting for it to finish", key[:24])
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _read_record(entry: Path) -> KernelBuild:
    try:
        return KernelBuild(**json.loads((entry / RECORD_NAME).read_text()))
    except (ValueError, TypeError) as exc:
        raise ArchamiError(f"{entry / RECORD_NAME}: unreadable build record ({exc}): delete {entry}") from None


def _build_into_cache(
    request: KernelRequest, inputs: dict[str, str], key: str, entry: Path, log: logging.Logger
) -> KernelBuild:
    started = time.monotonic()
    cache = entry.parent  # made by _build_lock
    epoch = request.build_epoch()
    env = reproducible_env(epoch, request.pkgrel)
    # The scratch tree (~2 GB for a distro configuration) lives beside the cache, not in a small /tmp, at
    # a path fixed by the inputs: whatever of the build path reaches the output is the same every time.
    scratch = cache / f".scratch-{key[:24]}"
    shutil.rmtree(scratch, ignore_errors=True)  # a build that was killed (the caller holds the lock)
    scratch.mkdir()
    try:
        run(["tar", "-xf", request.source, "-C", scratch], log)
        tree = _source_tree(scratch)
        config_text = configure(tree, request.base, request.fragment, log, env=env)
        version = run(["make", "-s", "-C", tree, "kernelversion"], log, env=env, capture=True).strip()
        debver = f"{version}-{request.pkgrel}"
        compile_started = time.monotonic()
        run(
            ["nice", "-n", str(request.niceness), "make", "-C", tree, f"-j{request.jobs}", "INSTALL_MOD_STRIP=1",
             f"KDEB_PKGVERSION={debver}", "KDEB_COMPRESS=xz", "bindeb-pkg"],
            log, env=env,
        )  # fmt: skip
        compile_seconds = round(time.monotonic() - compile_started, 1)
        record = finish_build(request, inputs, key, entry, tree, config_text, compile_seconds, log)
        record.total_seconds = round(time.monotonic() - started, 1)
        (entry / RECORD_NAME).write_text(json.dumps(asdict(record), indent=2) + "\n")
    except BaseException:
        if os.environ.get(KEEP_SCRATCH_ENV):
            log.info("kept the scratch tree of the failed build: %s", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    _prune_cache(cache)
    return record


def finish_build(
    request: KernelRequest, inputs: dict[str, str], key: str, entry: Path, tree: Path, config_text: str,
    compile_seconds: float, log: logging.Logger,
) -> KernelBuild:  # fmt: skip
    """Package a compiled tree (bindeb-pkg's .debs beside it) and move the results into the cache entry."""
    env = reproducible_env(request.build_epoch(), request.pkgrel)
    # Only after the build: the release string comes from include/config/auto.conf (CONFIG_LOCALVERSION),
    # which the build itself writes; asked before, make prints the bare version.
    release = run(["make", "-s", "-C", tree, "kernelrelease"], log, env=env, capture=True).strip()
    version = run(["make", "-s", "-C", tree, "kernelversion"], log, env=env, capture=True).strip()
    debver = f"{version}-{request.pkgrel}"
    scratch = tree.parent
    staging = scratch / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    epoch = request.build_epoch()
    files = _package(request, tree, scratch, staging, release, version, debver, config_text, key, epoch, log)
    config_name = f"config-{release}"
    shutil.copyfile(tree / ".config", staging / config_name)
    record = KernelBuild(
        release=release, version=version, pkgbase=request.pkgbase, pkgrel=request.pkgrel, inputs=inputs,
        key=key, config_file=config_name, files={p.name: p.stat().st_size for p in files},
        compile_seconds=compile_seconds, total_seconds=0.0,
    )
    (staging / RECORD_NAME).write_text(json.dumps(asdict(record), indent=2) + "\n")
    result = staging / "result"
    result.mkdir()
    for path in [*files, staging / config_name, staging / RECORD_NAME]:
        os.replace(path, result / path.name)
    if entry.exists():
        shutil.rmtree(entry)
    os.replace(result, entry)
    return record


def _source_tree(scratch: Path) -> Path:
    trees = [p for p in scratch.iterdir() if (p / "Makefile").is_file() and (p / "Kconfig").is_file()]
    if len(trees) != 1:
        raise ArchamiError("the tarball does not hold exactly one Linux source tree (a top directory with Kconfig)")
    return trees[0]


def _package(
    request: KernelRequest, tree: Path, scratch: Path, staging: Path, release: str, version: str, debver: str,
    config_text: str, key: str, epoch: int, log: logging.Logger,
) -> list[Path]:  # fmt: skip
    """The kernel's own .debs (not linux-libc-dev: it would replace the distro's), the metapackages, and the
    pacman packages repacked from the .debs."""
    out = staging / "packages"
    out.mkdir()
    image = tree.parent / f"linux-image-{release}_{debver}_{DEB_ARCH}.deb"
    headers = tree.parent / f"linux-headers-{release}_{debver}_{DEB_ARCH}.deb"
    for deb in (image, headers):
        if not deb.is_file():
            raise ArchamiError(f"make bindeb-pkg did not write {deb.name}")
        read_deb(deb)
        os.replace(deb, out / deb.name)
    image, headers = out / image.name, out / headers.name
    name = request.pkgbase
    metas = [
        build_metapackage(
            name, debver, [f"linux-image-{release} (= {debver})", "linux-base", "kmod",
                           "initramfs-tools | linux-initramfs-tool"],
            f"Linux kernel for Amazon EC2 ({name})\nDepends on the newest {name} kernel image built by archami.",
            out, epoch=epoch, log=log,
        ),
        build_metapackage(
            f"{name}-headers", debver, [f"linux-headers-{release} (= {debver})", name],
            f"Header files for the {name} kernel\nDepends on the headers of the newest {name} kernel.",
            out, epoch=epoch, log=log,
        ),
    ]  # fmt: skip
    arch = ArchKernel(request.pkgbase, release, version, request.pkgrel, PACKAGER, epoch, key)
    extract_deb(image, scratch / "image-root")
    extract_deb(headers, scratch / "headers-root")
    kernel_pkg = arch.package_kernel(scratch / "image-root", parse_config(config_text), staging / "arch-kernel", out)
    headers_pkg = arch.package_headers(scratch / "headers-root", staging / "arch-headers", out)
    return [image, headers, *metas, kernel_pkg, headers_pkg]


def _prune_cache(cache: Path) -> None:
    builds = [p for p in cache.iterdir() if p.is_dir() and (p / RECORD_NAME).is_file()]
    builds.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[KEEP_BUILDS:]:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["DEFAULT_CACHE", "KernelBuild", "KernelRequest", "build_kernel"]
