"""Which Debian packages make which Arch package, and the Arch metadata archami relies on.

An Arch package is named after the Debian *source* package of its parts (which is usually Arch's name
too), renamed where Arch calls it something else. Its dependencies are Arch's own where they are written
down below (`base`, `linux`, `pacman` checked against PKGBUILDs derived from Arch's; `mkinitcpio`,
`archlinux-keyring`, `systemd-sysvcompat` as Arch's packages declare them today), plus the Arch names of its
parts' Debian dependencies, so the shared libraries every binary needs are always installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Debian source package -> Arch package name, where they differ.
SOURCE_RENAMES = {
    "gcc-14": "gcc-libs", "gnupg2": "gnupg", "gpgme1.0": "gpgme", "grub2": "grub", "libzstd": "zstd",
    "linux-signed-amd64": "linux", "linux": "linux", "pacman-package-manager": "pacman", "pci.ids": "hwdata",
    "procps": "procps-ng", "python3-defaults": "python", "python3.13": "python", "rng-tools5": "rng-tools",
    "xz-utils": "xz", "busybox": "mkinitcpio-busybox", "netbase": "iana-etc", "db5.3": "db5.3",
    "libpng1.6": "libpng", "mpfr4": "mpfr", "gnutls28": "gnutls", "tcp-wrappers": "tcp-wrappers",
    "lvm2": "device-mapper", "openldap": "libldap", "cyrus-sasl2": "libsasl", "libcap2": "libcap",
    "libtasn1-6": "libtasn1", "libgcrypt20": "libgcrypt", "sqlite3": "sqlite", "perl": "perl",
    "debianutils": "which", "libxcrypt": "libxcrypt", "libsigsegv": "libsigsegv", "libcbor": "libcbor",
}  # fmt: skip

# Debian binary packages that go elsewhere than their source's Arch package.
BINARY_RENAMES = {
    "systemd-sysv": "systemd-sysvcompat",
    "libsystemd0": "systemd-libs",
    "libudev1": "systemd-libs",
}

# Debian's own machinery (package management, debconf, maintainer-script helpers, Debian's initramfs
# tools and base files): Arch has no such packages, and a dependency on one is simply dropped.
DEBIAN_ONLY = {
    "adduser", "base-files", "base-passwd", "debconf", "dpkg", "init-system-helpers", "initramfs-tools",
    "initramfs-tools-bin", "initramfs-tools-core", "klibc-utils", "libklibc", "linux-base", "lsb-base",
    "libdebconfclient0", "libtext-charwidth-perl", "libtext-wrapi18n-perl", "runit-helper", "sensible-utils",
    "ucf", "sysvinit-utils", "debian-archive-keyring", "usr-is-merged", "usrmerge", "archlinux-keyring",
}  # fmt: skip

# Debian dependencies Arch does not have (they would only make dependency cycles: Arch's glibc does not
# depend on gcc-libs, nor its dbus on systemd).
DROPPED_DEPENDS = {"glibc": {"gcc-libs"}, "dbus": {"systemd"}}

# Packages in [extra] (everything else is in [core]), as on Arch.
EXTRA = {"rng-tools", "dracut", "less"}

# Arch's `base` (a meta package since 2019), in its PKGBUILD's order.
BASE_DEPENDS = [
    "filesystem", "gcc-libs", "glibc", "bash", "coreutils", "file", "findutils", "gawk", "grep", "procps-ng",
    "sed", "tar", "gettext", "pciutils", "psmisc", "shadow", "util-linux", "bzip2", "gzip", "xz", "licenses",
    "pacman", "archlinux-keyring", "systemd", "systemd-sysvcompat", "iputils", "iproute2",
]  # fmt: skip


@dataclass(frozen=True)
class ArchMeta:
    depends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    backup: list[str] = field(default_factory=list)
    description: str = ""
    only_declared: bool = False  # True: exactly Arch's dependencies (no translated Debian ones)


ARCH_META: dict[str, ArchMeta] = {
    "base": ArchMeta(BASE_DEPENDS, description="Minimal package set to define a basic Arch Linux installation"),
    "linux": ArchMeta(["coreutils", "initramfs", "kmod"], only_declared=True, description="The Linux kernel"),
    "mkinitcpio": ArchMeta(
        ["awk", "mkinitcpio-busybox", "kmod", "util-linux", "libarchive", "coreutils", "bash", "binutils",
         "diffutils", "findutils", "grep", "filesystem", "zstd", "systemd", "dracut"],
        provides=["initramfs"], backup=["etc/mkinitcpio.conf"],
        description="TEST STAND-IN for mkinitcpio (builds the initramfs with dracut); not Arch's mkinitcpio",
    ),
    "archlinux-keyring": ArchMeta(["pacman"], description="Arch Linux PGP keyring (archami's test signing key)"),
    "pacman": ArchMeta(
        ["bash", "glibc", "libarchive", "curl", "gpgme", "pacman-mirrorlist", "gettext", "gawk", "coreutils", "gnupg",
         "grep"],
        backup=["etc/pacman.conf", "etc/makepkg.conf"],
    ),
    "systemd-sysvcompat": ArchMeta(["systemd"], conflicts=["sysvinit"]),
    "curl": ArchMeta(["ca-certificates"]),  # Debian only recommends it; Arch's curl depends on it
    "gawk": ArchMeta(provides=["awk"]),
    "bash": ArchMeta(provides=["sh"]),
    "python": ArchMeta(provides=["python3"]),
    "util-linux": ArchMeta(provides=["util-linux-libs"]),
    "filesystem": ArchMeta(["iana-etc"], description="Base Arch Linux files (written for archami's tests)"),
    "licenses": ArchMeta(description="Standard licenses distribution package (placeholder)"),
    "pacman-mirrorlist": ArchMeta(backup=["etc/pacman.d/mirrorlist"], description="Arch Linux mirror list"),
}

# Packages made here from nothing but the files in extras.py (no Debian parts).
OWN_PACKAGES = ("base", "filesystem", "licenses", "pacman-mirrorlist", "mkinitcpio", "archlinux-keyring")

# Links Debian makes with update-alternatives in maintainer scripts (which do not run here): the
# conversion ships them in the package, as Arch packages ship them.
ALTERNATIVES = {
    "gawk": {"usr/bin/awk": "gawk"},
    "which": {"usr/bin/which": "which.debianutils"},
    "python": {"usr/bin/python": "python3"},
    "bash": {"usr/bin/sh": "bash"},
}

# Configuration files Debian's maintainer scripts copy from a template (ucf): Arch packages ship them.
CONFIG_FROM_TEMPLATE = {
    "openssh": {"etc/ssh/sshd_config": "usr/share/openssh/sshd_config"},
    "readline": {"etc/inputrc": "usr/share/readline/inputrc"},
}

# Unit files renamed to Arch's names.
UNIT_RENAMES = {"usr/lib/systemd/system/ssh.service": "usr/lib/systemd/system/sshd.service"}


def arch_name(debian_name: str, source: str) -> str:
    if debian_name in BINARY_RENAMES:
        return BINARY_RENAMES[debian_name]
    if debian_name.startswith("linux-image-"):
        return "linux"
    return SOURCE_RENAMES.get(source, source)
