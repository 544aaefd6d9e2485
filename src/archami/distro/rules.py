"""What archami knows about each distro as plain data: names, releases, architectures, version order.

Read while a definition is loaded and planned, before any backend exists, so this module imports nothing
of archami's config or build stages (they import it). The backends (`distro/arch.py`, `distro/debian.py`)
carry the same rules as their `rules` attribute and add what building needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Comparator = Callable[[str, str], int]


def _pacman_compare(a: str, b: str) -> int:
    from archami.pacman.vercmp import vercmp  # a port of libalpm's rpmvercmp (pure Python)

    result = vercmp(a, b)
    return (result > 0) - (result < 0)


def _dpkg_compare(a: str, b: str) -> int:
    """dpkg's ordering (epochs, '~' before everything) via python-debian, which implements dpkg's algorithm."""
    from debian.debian_support import Version

    from archami.errors import ArchamiError

    try:
        left, right = Version(a), Version(b)
    except ValueError as exc:
        raise ArchamiError(f"not a Debian version: {exc}") from None
    return (left > right) - (left < right)


@dataclass(frozen=True)
class DistroRules:
    name: str
    title: str  # as users write it: "Arch Linux"
    package_manager: str  # "pacman", "apt": what `package_manager` in a definition must say
    # The distro's architecture name for each of archami's (x86_64, i686, aarch64).
    architectures: dict[str, str]
    ssh_service: str  # the OpenSSH server's unit
    compare_versions: Comparator
    # A distro with one release ("rolling") never names it in variant ids; others always do, so an id does not
    # change when a release is added to or dropped from the matrix.
    only_release: str | None = None
    # Units of the distro's own packages that archami's first-boot agent replaces (masked when it runs).
    replaced_by_agent: tuple[str, ...] = field(default_factory=tuple)
    # Whether instances initialise the package manager's keyring on first boot (the agent's keyring phase).
    keyring_on_first_boot: bool = False
    # Where the package manager keeps downloads and its GnuPG home in an image (never shipped full).
    package_caches: tuple[str, ...] = ()
    config_dirs: tuple[str, ...] = ()  # drop-in directories of the package manager's configuration
    # Releases still in development (Debian testing and unstable, by codename: update when Debian moves on).
    # They have no maintained <release>-updates or -security archives, which mmdebstrap would add for a
    # codename (and whose stale Release files then stop the build).
    development_releases: tuple[str, ...] = ()
    gnupg_homes: tuple[str, ...] = ()
    # Host tools this distro's backend runs, for `archami doctor`:
    # (name, purpose, Debian/Ubuntu package, Arch package, command or None, file or None).
    host_tools: tuple[tuple[str, str, str, str, str | None, str | None], ...] = ()

    def release_error(self, release: str) -> str | None:
        """Why `release` is not a release of this distro, or None."""
        if self.only_release is not None and release != self.only_release:
            return f"{self.title} has one release: {self.only_release!r}"
        return None

    def release_in_id(self, release: str) -> bool:
        return self.only_release is None or release != self.only_release


ARCH = DistroRules(
    name="arch",
    title="Arch Linux",
    package_manager="pacman",
    architectures={"x86_64": "x86_64", "i686": "i686", "aarch64": "aarch64"},
    ssh_service="sshd.service",
    compare_versions=_pacman_compare,
    only_release="rolling",
    # Arch's openssh generates every missing host key type (RSA included) before sshd starts; the agent makes
    # fast keys first and RSA after sshd is up, so that unit would block sshd and race the agent.
    replaced_by_agent=("sshdgenkeys.service",),
    keyring_on_first_boot=True,
    package_caches=("/var/cache/pacman/pkg",),
    config_dirs=("/etc/pacman.d",),
    gnupg_homes=("/etc/pacman.d/gnupg",),
    host_tools=(
        ("pacman", "Arch Linux root filesystems", "pacman-package-manager", "pacman", "pacman", None),
        ("archlinux-keyring", "verify Arch Linux package signatures", "archlinux-keyring", "archlinux-keyring",
         None, "/usr/share/keyrings/archlinux.gpg"),
    ),
)

DEBIAN = DistroRules(
    name="debian",
    title="Debian",
    package_manager="apt",
    architectures={"x86_64": "amd64", "i686": "i386", "aarch64": "arm64"},
    ssh_service="ssh.service",
    compare_versions=_dpkg_compare,
    package_caches=("/var/cache/apt/archives",),
    config_dirs=("/etc/apt/apt.conf.d",),
    development_releases=("forky", "sid"),
    host_tools=(
        ("mmdebstrap", "Debian root filesystems", "mmdebstrap", "mmdebstrap", "mmdebstrap", None),
        ("debian-archive-keyring", "verify Debian archive signatures", "debian-archive-keyring",
         "debian-archive-keyring", None, "/usr/share/keyrings/debian-archive-keyring.gpg"),
    ),
)

ALL_RULES = (ARCH, DEBIAN)
_RULES = {r.name: r for r in ALL_RULES}


def rules_for(distro: str) -> DistroRules:
    try:
        return _RULES[distro]
    except KeyError:
        from archami.errors import ArchamiError

        raise ArchamiError(f"unknown distro {distro!r} (known: {', '.join(sorted(_RULES))})") from None
