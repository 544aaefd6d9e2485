"""The one interface behind which distro differences live.

The build stage (image/pipeline.py, execution order in image/steps.py) calls a backend's methods; the
backend reads only the variant's resolved ImageSpec and keeps no state between calls (inputs in, files out).
Only modules in distro/ name pacman, apt or dpkg, or a distro's own units and keyrings.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from archami.artifacts import PackageInfo
from archami.config.spec import ImageSpec
from archami.distro.rules import DistroRules


@dataclass
class BuildContext:
    """Everything one variant's build needs; passed to every step."""

    spec: ImageSpec
    root: Path  # the image's root filesystem being built
    work: Path  # scratch directory for this build (removed afterwards)
    cache: Path  # package cache reused between builds (per distro/release/arch below it)
    log: logging.Logger
    env: dict[str, str] = field(default_factory=dict)  # extra environment for tools (mirrors etc.)


class DistroBackend(ABC):
    """One per distro: how to make a root filesystem and the distro-specific bits of an EC2 image."""

    rules: ClassVar[DistroRules]

    @property
    def name(self) -> str:
        return self.rules.name

    @property
    def ssh_service(self) -> str:
        return self.rules.ssh_service

    @abstractmethod
    def cache_inputs(self, spec: ImageSpec) -> dict[str, object]:
        """Everything that determines the bootstrapped root (the root cache key hashes it). Pure."""

    @abstractmethod
    def bootstrap(self, ctx: BuildContext) -> None:
        """Create ctx.root with the base system, the kernel and the spec's packages, signatures verified."""

    @abstractmethod
    def regenerate_initramfs(self, ctx: BuildContext) -> None:
        """Rebuild the initramfs with the spec's modules and without host autodetection."""

    @abstractmethod
    def configure_package_manager(self, ctx: BuildContext) -> None:
        """Write the package manager configuration the instance will use (mirrors, extra repositories)."""

    @abstractmethod
    def installed_packages(self, root: Path) -> list[PackageInfo]:
        """Every installed package with its version, for the manifest."""

    @abstractmethod
    def kernel_version(self, root: Path, spec: ImageSpec) -> str:
        """The version (uname -r form) of the spec's kernel, read from the root."""

    @abstractmethod
    def clean(self, ctx: BuildContext) -> None:
        """Remove caches, logs and keyrings that must not ship."""

    def agent_settings(self, spec: ImageSpec) -> dict[str, object]:
        """The first-boot agent's distro-specific settings (keyrings to populate, region mirror templates)."""
        return {}

    def tune_boot(self, ctx: BuildContext) -> None:
        """Leave out of the image the distro's own boot-time work an EC2 instance has no use for."""
        ctx.log.debug("%s: no distro-specific boot tuning", self.name)

    def units_replaced_by_agent(self, spec: ImageSpec) -> tuple[str, ...]:
        """The distro's own units that archami's agent does the work of (masked in the image)."""
        return self.rules.replaced_by_agent if spec.firstboot.agent == "archami" else ()
