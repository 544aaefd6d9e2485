"""The one interface behind which distro differences live.

The build stage calls these methods in this order (see image/ for the whole execution order):

    bootstrap -> (EC2 steps, distro-neutral) -> configure_package_manager -> regenerate_initramfs
    -> installed_packages / kernel_version (manifest) -> clean

Only modules in distro/ name pacman or apt; everything else goes through a `DistroBackend`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from archami.artifacts import PackageInfo
from archami.config.schema import Definition
from archami.config.variant import Variant


@dataclass
class BuildContext:
    """Everything one variant's build needs; passed to every step."""

    definition: Definition
    variant: Variant
    root: Path  # the image's root filesystem being built
    work: Path  # scratch directory for this build (removed afterwards)
    cache: Path  # package cache reused between builds (per distro/release/arch below it)
    log: logging.Logger
    env: dict[str, str] = field(default_factory=dict)  # extra environment for tools (mirrors etc.)


class DistroBackend(ABC):
    """One per distro: how to make a root filesystem and the distro-specific bits of an EC2 image."""

    name: str
    ssh_service: str  # the sshd unit name: "sshd.service" on Arch, "ssh.service" on Debian

    @abstractmethod
    def bootstrap(self, ctx: BuildContext) -> None:
        """Create ctx.root with the base system, the kernel and ctx.variant.packages, signatures verified."""

    @abstractmethod
    def regenerate_initramfs(self, ctx: BuildContext) -> None:
        """Rebuild the initramfs with the definition's modules and without host autodetection."""

    @abstractmethod
    def configure_package_manager(self, ctx: BuildContext) -> None:
        """Write the package manager configuration the instance will use (mirrors, extra repositories)."""

    @abstractmethod
    def installed_packages(self, root: Path) -> list[PackageInfo]:
        """Every installed package with its version, for the manifest."""

    @abstractmethod
    def kernel_version(self, root: Path) -> str:
        """The installed kernel's version (uname -r form), read from the root."""

    @abstractmethod
    def clean(self, ctx: BuildContext) -> None:
        """Remove caches, logs and keyrings that must not ship."""
