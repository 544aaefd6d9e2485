"""What archami knows about each distro as plain data: names, releases, architectures, version order.

Read while a definition is loaded and planned, before any backend exists, so this module imports nothing
of archami's config or build stages (they import it). The backends (`distro/arch.py`, `distro/debian.py`)
carry the same rules as their `rules` attribute and add what building needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

Comparator = Callable[[str, str], int]

# Package names as each distro's own tools define them, matched against the whole string (re.fullmatch):
# - makepkg (PKGBUILD(5)): alphanumerics and @ . _ + -, not starting with a hyphen or a dot;
# - Debian Policy 5.6.1: lower-case letters, digits, + - and ., at least two characters, starting with
#   an alphanumeric (no architecture qualifiers, versions or "/suite": a definition names packages only).
# Neither sets a length limit; 128 characters is archami's (a name is also a file name in caches).
PACMAN_PACKAGE = re.compile(r"[A-Za-z0-9@_+][A-Za-z0-9@._+-]{0,127}")
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]{1,127}")
# A Debian suite or codename ("bookworm", "trixie", "sid", "stable"): part of variant ids and AMI names.
DEBIAN_RELEASE = re.compile(r"[a-z][a-z0-9-]{0,31}")
# A pacman repository name is a section of pacman.conf and the database file NAME.db: a plain word.
PACMAN_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,63}")
# An apt repository's name is its file in sources.list.d, NAME.sources: apt ignores files whose names hold
# anything but letters, digits, '_', '-' and '.' (sources.list(5)); no '.' so the name is one word.
APT_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

# pacman's per-repository SigLevel tokens (pacman.conf(5)); those weaker than archami's default are refused.
PACMAN_WEAKENING_SIGLEVELS = frozenset({
    "Never", "Optional", "TrustAll",
    "PackageNever", "PackageOptional", "PackageTrustAll",
    "DatabaseNever", "DatabaseTrustAll",
})
PACMAN_SIGLEVELS = PACMAN_WEAKENING_SIGLEVELS | {
    "Required", "TrustedOnly",
    "PackageRequired", "PackageTrustedOnly",
    "DatabaseRequired", "DatabaseOptional", "DatabaseTrustedOnly",
}
PACMAN_DEFAULT_SIGLEVEL = "Required DatabaseOptional"


def _apt_siglevel_error(siglevel: str) -> str | None:
    """apt checks every repository's signature (signed-by); there is no weaker level to ask for."""
    if siglevel == "Required":
        return None
    return f"{siglevel!r}: apt repositories are always signature-checked ('Required', the default)"


def _pacman_siglevel_error(siglevel: str) -> str | None:
    tokens = siglevel.split()
    if not tokens:
        return "is empty (use 'Required')"
    unknown = [t for t in tokens if t not in PACMAN_SIGLEVELS]
    if unknown:
        return f"unknown SigLevel {' '.join(unknown)!r} (known: {', '.join(sorted(PACMAN_SIGLEVELS))})"
    weak = [t for t in tokens if t in PACMAN_WEAKENING_SIGLEVELS]
    if weak:
        return (f"SigLevel {' '.join(weak)!r} is weaker than {PACMAN_DEFAULT_SIGLEVEL!r}; archami only allows "
                "stricter per-repository levels")
    return None


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
    # Names, matched whole: packages (and kernel packages), releases, extra repositories (None: this distro
    # takes no extra repositories in a definition).
    package_name: re.Pattern[str] = PACMAN_PACKAGE
    package_name_rule: str = ""  # the rule in words, for error messages
    release_name: re.Pattern[str] | None = None
    repository_name: re.Pattern[str] | None = None
    repository_name_rule: str = "letters, digits, '_', '+', '-'; at most 64"
    repository_key_required: bool = False  # no way to trust a repository but its own key (apt: signed-by)
    reserved_repository_names: tuple[str, ...] = ()  # the distro's own repositories, and section names
    siglevel_error: Callable[[str], str | None] | None = None
    # The initramfs tool's mark of an optional module ("name?": skipped when the kernel has none), or None.
    optional_module_suffix: str | None = None

    def release_error(self, release: str) -> str | None:
        """Why `release` is not a release of this distro, or None."""
        if self.only_release is not None and release != self.only_release:
            return f"{self.title} has one release: {self.only_release!r}"
        if self.release_name is not None and not self.release_name.fullmatch(release):
            return f"{release!r} is not a {self.title} release name (lower-case letters, digits and '-')"
        return None

    def package_error(self, name: str) -> str | None:
        """Why `name` is not a package name of this distro, or None."""
        if self.package_name.fullmatch(name):
            return None
        return f"{name!r} is not a valid package name for {self.title}: {self.package_name_rule}"

    def repository_error(self, name: str) -> str | None:
        if self.repository_name is None:
            return f"extra repositories are not supported for {self.title} definitions"
        if not self.repository_name.fullmatch(name):
            return f"{name!r} is not a repository name ({self.repository_name_rule})"
        if name in self.reserved_repository_names:
            return f"{name!r} is the name of one of {self.title}'s own repositories or sections"
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
    package_name=PACMAN_PACKAGE,
    package_name_rule="letters, digits and @ . _ + -, not starting with '-' or '.' (makepkg's rule)",
    repository_name=PACMAN_REPOSITORY,
    reserved_repository_names=("options", "core", "extra", "multilib", "testing", "core-testing", "extra-testing"),
    siglevel_error=_pacman_siglevel_error,
    optional_module_suffix="?",  # mkinitcpio v41
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
    package_name=DEBIAN_PACKAGE,
    package_name_rule="lower-case letters, digits and + - ., at least two, starting with a letter or digit "
    "(Debian Policy 5.6.1)",
    release_name=DEBIAN_RELEASE,
    repository_name=APT_REPOSITORY,
    repository_name_rule="letters, digits, '_', '-'; at most 64: it names a file in sources.list.d",
    repository_key_required=True,
    siglevel_error=_apt_siglevel_error,
)

ALL_RULES = (ARCH, DEBIAN)
_RULES = {r.name: r for r in ALL_RULES}


def rules_for(distro: str) -> DistroRules:
    try:
        return _RULES[distro]
    except KeyError:
        from archami.errors import ArchamiError

        raise ArchamiError(f"unknown distro {distro!r} (known: {', '.join(sorted(_RULES))})") from None
