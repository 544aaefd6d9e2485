"""A Variant: one image of the matrix, fully resolved. Pure data handed to every later stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from archami.config.schema import Architecture, Distro, KernelChannel, RootDevice, Virtualization


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # the image family (Definition.name)
    distro: Distro
    release: str
    root_device: RootDevice
    virtualization: Virtualization
    architecture: Architecture
    flavour: str
    kernel_channel: KernelChannel
    kernel_package: str
    packages: tuple[str, ...]  # added on top of the distro base, sorted
    removed: tuple[str, ...]
    services_enabled: tuple[str, ...]
    services_disabled: tuple[str, ...]
    services_deferred: tuple[str, ...] = ()
    multi_release: bool = False  # the matrix spans releases, so the id names the release

    def _parts(self, root_device: str) -> list[str]:
        """The seed's column order: [release] root-device virtualization [flavour] architecture [kernel]."""
        parts = [self.release] if self.multi_release else []
        parts += [root_device, self.virtualization]
        if self.flavour != "default":
            parts.append(self.flavour)
        parts.append(self.architecture)
        if self.kernel_channel != "stable":
            parts.append(self.kernel_channel)
        return parts

    @property
    def id(self) -> str:
        """Stable short id: 'ebs-hvm-gpu-x86_64', 'instance-store-paravirtual-i686'."""
        return "-".join(self._parts(self.root_device))

    @property
    def label(self) -> str:
        """Column heading as on the seed's release page: 'ebs hvm gpu x86_64' (instance-store shown as s3)."""
        return " ".join(self._parts("s3" if self.root_device == "instance-store" else "ebs"))

    @property
    def boot_mode(self) -> str:
        """EC2 BootMode: hvm disks carry GRUB for BIOS and UEFI (x86_64), aarch64 is UEFI only."""
        if self.virtualization == "paravirtual":
            return "legacy-bios"
        if self.architecture == "aarch64":
            return "uefi"
        return "uefi-preferred"

    @property
    def ec2_architecture(self) -> str:
        return {"x86_64": "x86_64", "i686": "i386", "aarch64": "arm64"}[self.architecture]
