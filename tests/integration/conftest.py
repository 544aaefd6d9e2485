"""Shared integration fixtures: one real Debian build per test session, reused by every boot test."""

from __future__ import annotations

import fcntl
import os

import pytest
from build_support import ARM64_VARIANT, CACHE_DIR, DEBIAN_EXAMPLE, DEBIAN_VARIANT

from archami.artifacts import BuildResult
from archami.config import load_definition, select
from archami.image.pipeline import build_variant


@pytest.fixture(scope="session")
def debian_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """examples/debian.toml, variant bookworm-ebs-hvm-x86_64, built once per session."""
    if os.geteuid() != 0:
        pytest.fail("building an image needs root (mmdebstrap --mode=root, chroot, file ownership)")
    loaded = load_definition(DEBIAN_EXAMPLE)
    variant = select(loaded.variants, DEBIAN_VARIANT)[0]
    return build_variant(loaded, variant, tmp_path_factory.mktemp("debian-build"), CACHE_DIR)


@pytest.fixture(scope="session")
def arm64_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """examples/debian.toml, variant trixie-ebs-hvm-aarch64, built once per session on this (x86_64) host: the
    image's own programs run under qemu-user (binfmt_misc, registered by the build when missing)."""
    if os.geteuid() != 0:
        pytest.fail("building an image needs root (mmdebstrap --mode=root, chroot, file ownership)")
    loaded = load_definition(DEBIAN_EXAMPLE)
    variant = select(loaded.variants, ARM64_VARIANT)[0]
    # `make test` runs integration files in two workers, each its own session: the second to need this build
    # waits for the first (a cold arm64 bootstrap is minutes of emulation) and then finds its root cached.
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / ".arm64-test-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_variant(loaded, variant, tmp_path_factory.mktemp("arm64-build"), CACHE_DIR)
