"""Where the shared Debian build comes from (used by conftest.py's `debian_build` and the build tests)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEBIAN_EXAMPLE = REPO / "examples" / "debian.toml"
DEBIAN_VARIANT = "trixie-ebs-hvm-x86_64"  # Debian stable (the example also has testing)
ARM64_VARIANT = "trixie-ebs-hvm-aarch64"  # the same, for Graviton: built under qemu-user, booted under TCG
# The package and root caches live where `archami build` keeps them, so repeated runs on one machine are warm.
CACHE_DIR = Path(os.environ.get("ARCHAMI_TEST_CACHE", "/var/cache/archami"))
