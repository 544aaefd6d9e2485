"""linux-ec2 as the integration tests build it: Debian's linux-source-6.1 (installed by `make deps`),
defconfig + archami's EC2 fragment, cached under the machine's archami cache (a cold build once, then
a copy), and helpers to serve its packages the way images install them."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from build_support import CACHE_DIR

from archami.kernel.build import KernelBuild, KernelRequest, build_kernel
from archami.kernel.configure import BaseConfig
from archami.kernel.fragment import default_fragment_path

SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
KERNEL_CACHE = CACHE_DIR / "kernel"
HOST_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def build_linux_ec2(out: Path) -> KernelBuild:
    assert SOURCE_TARBALL.is_file(), f"{SOURCE_TARBALL} missing: run `make deps` (package linux-source-6.1)"
    for tool in ("gcc", "make", "bc", "bison", "flex", "dpkg-buildpackage", "dpkg-deb", "rsync", "cpio"):
        assert shutil.which(tool), f"{tool} missing: run `make deps`"
    request = KernelRequest(source=SOURCE_TARBALL, base=BaseConfig.load("defconfig"), fragment=default_fragment_path())
    out.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("archami.kernel.tests")
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(out / "kernel-build.log")
    log.addHandler(handler)
    try:
        return build_kernel(request, out, log, KERNEL_CACHE)
    finally:
        log.removeHandler(handler)
        handler.close()


def debian_archive_mirrors() -> list[str]:
    """Where the build machine gets Debian from (its own apt sources, or $ARCHAMI_DEBIAN_MIRROR): a
    definition whose `mirrors` adds a repository must list the archive too."""
    configured = os.environ.get("ARCHAMI_DEBIAN_MIRROR", "").split()
    if configured:
        return configured
    found = [str(p) for p in HOST_SOURCES if p.is_file() and p.read_text().strip()]
    assert found, "no apt sources on this machine to bootstrap Debian from (set ARCHAMI_DEBIAN_MIRROR)"
    return found[:1]


@contextmanager
def world_readable_dir(prefix: str) -> Iterator[Path]:
    """A scratch directory apt's unprivileged `_apt` helpers can read (pytest's tmp_path is root-only,
    and apt verifies signatures as _apt: a key file there gives NO_PUBKEY)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
