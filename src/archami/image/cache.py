"""The root cache: bootstrapped image roots kept as tarballs, keyed on exactly what determines them.

Bootstrapping (mmdebstrap, pacman) is most of a build's time. What it produces depends only on the distro,
release, architecture, package set, mirrors and the backend's options -- not on sshd settings, files,
services or the kernel command line. So a config-only change reuses the tarball and re-runs only the
steps and the disk assembly. The key hashes the backend's `cache_inputs`.

A key cannot show what the archive publishes after the root was made: Debian's security and point
updates, every Arch package. So a root is reused for `MAX_ROOT_AGE` at most (every distro alike); a
weekly re-release therefore bootstraps afresh and ships that day's packages, while builds of one day
share a root (the package caches still spare the downloads of what did not change).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archami.config.spec import ImageSpec
from archami.config.variant import Variant
from archami.distro.base import DistroBackend
from archami.runner import run

# Bump when archami changes how it bootstraps in a way the inputs below do not show.
CACHE_FORMAT = 1
DEFAULT_CACHE_DIR = Path("/var/cache/archami")
MAX_ROOT_AGE = 24 * 3600  # seconds; an archive's security updates are published daily
KEEP_PER_FAMILY = 6  # roots kept per distro/release/arch (least recently used go first)
_TAR_FLAGS = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"]


def cache_inputs(backend: DistroBackend, spec: ImageSpec) -> dict[str, Any]:
    """What determines the bootstrapped root: the backend says (its packages, mirrors, keys...). Pure."""
    return {
        "format": CACHE_FORMAT,
        "backend": backend.name,
        "release": spec.variant.release,
        "architecture": spec.architecture,
        **backend.cache_inputs(spec),
    }


def cache_key(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class RootCache:
    directory: Path

    @property
    def roots(self) -> Path:
        return self.directory / "roots"

    def tarball(self, variant: Variant, key: str) -> Path:
        return self.roots / f"{variant.distro}-{variant.release}-{variant.architecture}-{key[:20]}.tar"

    def lookup(self, variant: Variant, key: str, max_age: float = MAX_ROOT_AGE) -> Path | None:
        """The cached root for `key` if one was bootstrapped less than `max_age` seconds ago."""
        path = self.tarball(variant, key)
        created = self.created(path)
        if created is None or time.time() - created > max_age:
            return None
        return path

    def created(self, tarball: Path) -> float | None:
        """When the root in `tarball` was bootstrapped (None: no such root, or no readable record of it).
        Not the tarball's mtime: restore() touches that for pruning."""
        if not tarball.exists():
            return None
        try:
            created = json.loads(tarball.with_suffix(".json").read_text())["created"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return float(created) if isinstance(created, int | float) else None

    def restore(self, tarball: Path, root: Path, log: logging.Logger) -> None:
        root.mkdir(parents=True, exist_ok=True)
        run(["tar", "-x", "-p", *_TAR_FLAGS, "-f", tarball, "-C", root], log)
        os.utime(tarball)  # last use, for pruning

    def store(self, variant: Variant, key: str, inputs: dict[str, Any], root: Path, log: logging.Logger) -> Path:
        """Save a freshly bootstrapped root (atomically: temp name, then rename) and prune old ones."""
        self.roots.mkdir(parents=True, exist_ok=True)
        final = self.tarball(variant, key)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            run(["tar", "-c", *_TAR_FLAGS, "--sort=name", "-f", tmp, "-C", root, "."], log)
            final.with_suffix(".json").write_text(
                json.dumps({"key": key, "created": time.time(), "inputs": inputs}, indent=2, sort_keys=True)
            )
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        self.prune(variant)
        return final

    def prune(self, variant: Variant) -> None:
        family = sorted(
            self.roots.glob(f"{variant.distro}-{variant.release}-{variant.architecture}-*.tar"),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in family[KEEP_PER_FAMILY:]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
