"""Human sizes ("2GiB", "512M", 1073741824) to bytes.

Written by hand because the accepted grammar is tiny and the error message must name the key;
pydantic's ByteSize accepts decimal/binary units but gives messages we cannot control per key.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: str | int) -> int:
    """Return a size in bytes. Binary units for K/M/G/T and KiB..; decimal for KB/MB/GB/TB."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string such as '2GiB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size (examples: 2GiB, 512M, 1073741824)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"unknown size unit {unit!r} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")
    return int(float(number) * factor)


def format_size(size: int) -> str:
    """The shortest exact binary form: 2147483648 -> '2GiB'."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
