"""A Variant: which image of the matrix this is (its identity). Kept in manifests and release records.

What the image is made of lives in `ImageSpec` (config/spec.py), which holds a Variant.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from archami.config.schema import Architecture, Distro, KernelChannel, RootDevice, Virtualization
from archami.distro.rules import rules_for


class Variant(BaseModel):
    # Records written by older versions carry more fields (the package lists): ignored, ids unchanged.
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str  # the image family (Definition.name)
    distro: Distro
    release: str
    root_device: RootDevice
    virtualization: Virtualization
    architecture: Architecture
    flavour: str
    kernel_channel: KernelChannel
    kernel_package: str

    def _parts(self, root_device: str) -> list[str]:
        """The seed's column order: [release] root-device virtualization [flavour] architecture [kernel].

        Every part depends on this variant alone, never on the rest of the matrix, so adding or dropping a
        release, flavour or channel renames no existing image. The release is left out only for a distro
        that has just one (Arch's "rolling")."""
        parts = [self.release] if rules_for(self.distro).release_in_id(self.release) else []
        parts += [root_device, self.virtualization]
        if self.flavour != "default":
            parts.append(self.flavour)
        parts.append(self.architecture)
        if self.kernel_channel != "stable":
            parts.append(self.kernel_channel)
        return parts

    @property
    def id(self) -> str:
        """Stable short id: 'trixie-ebs-hvm-x86_64', 'ebs-hvm-gpu-x86_64' (Arch), ..."""
        return "-".join(self._parts(self.root_device))

    @property
    def label(self) -> str:
        """Column heading as on the seed's release page: 'ebs hvm gpu x86_64' (instance-store shown as s3)."""
        return " ".join(self._parts("s3" if self.root_device == "instance-store" else "ebs"))

    @property
    def boot_mode(self) -> str:
        """EC2 BootMode: hvm disks carry GRUB for BIOS and UEFI (x86_64), aarch64 is UEFI only. Paravirtual,
        instance-store (Xen instance types only) and i386 AMIs (UEFI is x86_64 and arm64 only) boot BIOS."""
        if self.virtualization == "paravirtual" or self.root_device == "instance-store" or self.architecture == "i686":
            return "legacy-bios"
        if self.architecture == "aarch64":
            return "uefi"
        return "uefi-preferred"

    @property
    def ec2_architecture(self) -> str:
        return {"x86_64": "x86_64", "i686": "i386", "aarch64": "arm64"}[self.architecture]
