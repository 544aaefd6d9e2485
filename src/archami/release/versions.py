"""Package version ordering per distro: pacman's rules for Arch, dpkg's for Debian."""

from __future__ import annotations

from collections.abc import Callable

from debian.debian_support import Version

from archami.errors import ArchamiError

Comparator = Callable[[str, str], int]


def dpkg_compare(a: str, b: str) -> int:
    """dpkg's ordering (epochs, '~' before everything) via python-debian, which implements dpkg's algorithm."""
    try:
        left, right = Version(a), Version(b)
    except ValueError as exc:
        raise ArchamiError(f"not a Debian version: {exc}") from None
    return (left > right) - (left < right)


def pacman_compare(a: str, b: str) -> int:
    from archami.pacman.vercmp import vercmp  # the pacman engineer's port of pacman's rpmvercmp

    result = vercmp(a, b)
    return (result > 0) - (result < 0)


def comparator_for(distro: str) -> Comparator:
    if distro == "arch":
        return pacman_compare
    if distro == "debian":
        return dpkg_compare
    raise ArchamiError(f"no version ordering known for distro {distro!r}")
