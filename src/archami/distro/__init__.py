"""Distro backends behind one interface (base.DistroBackend)."""

from __future__ import annotations

from archami.distro.base import BuildContext, DistroBackend

__all__ = ["BuildContext", "DistroBackend", "backend_for"]


def backend_for(distro: str) -> DistroBackend:
    """The backend for a definition's distro."""
    if distro == "debian":
        from archami.distro.debian import DebianBackend

        return DebianBackend()
    if distro == "arch":
        from archami.distro.arch import ArchBackend

        return ArchBackend()
    raise ValueError(f"unknown distro {distro!r}")
