"""Distro backends behind one interface (base.DistroBackend); their plain rules in rules.py.

Nothing is imported here up front: config/ reads `archami.distro.rules` while loading a definition, and the
backends import config/ (a cycle if this package imported them eagerly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archami.distro.base import DistroBackend

__all__ = ["backend_for"]


def backend_for(distro: str) -> DistroBackend:
    """The backend for a definition's distro."""
    if distro == "debian":
        from archami.distro.debian import DebianBackend

        return DebianBackend()
    if distro == "arch":
        from archami.distro.arch import ArchBackend

        return ArchBackend()
    from archami.distro.rules import rules_for

    rules_for(distro)  # raises the error naming the known distros
    raise AssertionError(distro)
