"""Hostname and machine-id: what makes this instance itself."""

from __future__ import annotations

import os
import re
import socket

from .context import Context
from .files import read_text, write_atomic

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def hostname_from_metadata(local_hostname: str) -> str | None:
    """'ip-10-0-0-15.ec2.internal' -> 'ip-10-0-0-15' (the first label, as EC2 instances name themselves)."""
    label = local_hostname.strip().split(".", 1)[0].lower()
    return label if _LABEL.match(label) else None


def set_hostname(ctx: Context, name: str) -> None:
    write_atomic(ctx.path("/etc/hostname"), f"{name}\n".encode(), 0o644)
    if ctx.live:
        socket.sethostname(name)  # systemd reads /etc/hostname only at boot; this boot needs it now


def new_machine_id() -> str:
    """A random 128-bit id formatted as systemd does (a v4 UUID without dashes)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def machine_id(ctx: Context) -> str:
    return (read_text(ctx.path("/etc/machine-id")) or "").strip()


def replace_machine_id(ctx: Context) -> str:
    """Write a new /etc/machine-id. The running systemd keeps the old one until the next boot, so this is
    done early in the first boot of the new instance; journald's files follow from the next boot on."""
    value = new_machine_id()
    write_atomic(ctx.path("/etc/machine-id"), f"{value}\n".encode(), 0o444)
    return value
