"""pv-grub, the one truth: which disk layout a paravirtual image has, what its menu.lst calls the root, which of
Amazon's pv-grub kernels (AKIs) boots it and the root device it is registered with. PURE: no I/O.

Amazon publishes two families of pv-grub AKIs (GRUB 0.97 built for Xen, "user provided kernels" in the EC2
docs): `pv-grub-hd0_*` reads /boot/grub/menu.lst from the first disk itself, `pv-grub-hd00_*` from that
disk's first partition. Since release 1.04 the hd0 kernels look at (hd0) and then (hd0,0) (which is why
bootstrap-vz dropped the hd00 ones in 2014); nixpkgs' old create-amis.sh and EC2's own paravirtual AMIs used
hd0 with an unpartitioned volume. archami does the same: the ext4 filesystem is the whole volume, attached
as /dev/sda1 (xvda1 in the guest), so growing the root at first boot is resize2fs alone.

layout.plan_layout, grub.menu_lst, the manifest's root device and aws.images.find_pv_grub_aki all read
this table, so the layout, the menu and the AKI cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from archami.errors import ArchamiError


@dataclass(frozen=True)
class PvGrubBoot:
    scheme: str  # the disk's partition scheme (DiskLayout.scheme / the manifest's partition_scheme)
    grub_root: str  # the GRUB legacy device menu.lst names as root
    aki_name: str  # the name pattern of the Amazon pv-grub kernels that read that device
    root_device_name: str  # RegisterImage's RootDeviceName (and the block device mapping's)


UNPARTITIONED = PvGrubBoot(scheme="none", grub_root="(hd0)", aki_name="pv-grub-hd0_*", root_device_name="/dev/sda1")
# Known, so an image registered by other tools can be recognised; archami builds only UNPARTITIONED.
FIRST_PARTITION = PvGrubBoot(scheme="msdos", grub_root="(hd0,0)", aki_name="pv-grub-hd00_*",
                             root_device_name="/dev/sda")

PARAVIRTUAL_BOOT = UNPARTITIONED  # what archami builds
_BY_SCHEME = {b.scheme: b for b in (UNPARTITIONED, FIRST_PARTITION)}


def pv_grub_boot(scheme: str | None) -> PvGrubBoot:
    """How pv-grub boots a disk of this partition scheme; None (a manifest from before schemes were recorded)
    is archami's paravirtual layout."""
    if scheme is None:
        return PARAVIRTUAL_BOOT
    try:
        return _BY_SCHEME[scheme]
    except KeyError:
        raise ArchamiError(f"pv-grub cannot boot a disk with a {scheme!r} partition table") from None
