"""ImageSpec: everything one variant's build needs, resolved — the definition with the flavour's overrides
and the matrix's choices applied. The build stage, the distro backends and the agent installer read only
this; the definition stays the user's file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from archami.config.schema import Disk, FileSpec, FirstBoot, Network, Repository, Ssh
from archami.config.variant import Variant


class KernelSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    package: str
    cmdline: tuple[str, ...]  # extra arguments (root= and the console come from the disk layout)
    initramfs_modules: tuple[str, ...]


class ServicePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()  # enabled units moved to multi-user.target (see Services.deferred)


class ImageSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant: Variant
    description: str  # the AMI description
    flavour_description: str  # what the flavour is for (release page); "" for the default flavour
    instance_type: str | None  # suggested instance type (release page)
    hostname: str
    timezone: str
    locale: str
    kernel: KernelSpec
    packages: tuple[str, ...]  # added on top of the distro base, sorted, the kernel package included
    removed: tuple[str, ...]
    services: ServicePlan
    files: tuple[FileSpec, ...]
    ssh: Ssh
    network: Network
    firstboot: FirstBoot
    disk: Disk
    repositories: tuple[Repository, ...]
    mirrors: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.variant.id

    @property
    def distro(self) -> str:
        return self.variant.distro

    @property
    def architecture(self) -> str:
        return self.variant.architecture
