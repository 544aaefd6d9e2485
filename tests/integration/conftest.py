"""Shared integration fixtures: one real Debian build per test session, reused by every boot test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archami.artifacts import BuildResult
from archami.build.pipeline import build_variant
from archami.config import load_definition, select

REPO = Path(__file__).resolve().parents[2]
DEBIAN_EXAMPLE = REPO / "examples" / "debian.toml"
DEBIAN_VARIANT = "bookworm-ebs-hvm-x86_64"
# The package and root caches live where `archami build` keeps them, so repeated runs on one machine are warm.
CACHE_DIR = Path(os.environ.get("ARCHAMI_TEST_CACHE", "/var/cache/archami"))


@pytest.fixture(scope="session")
def debian_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """examples/debian.toml, variant bookworm-ebs-hvm-x86_64, built once per session."""
    if os.geteuid() != 0:
        pytest.fail("building an image needs root (mmdebstrap --mode=root, chroot, file ownership)")
    loaded = load_definition(DEBIAN_EXAMPLE)
    variant = select(loaded.variants, DEBIAN_VARIANT)[0]
    return build_variant(loaded, variant, tmp_path_factory.mktemp("debian-build"), CACHE_DIR)
