"""Human sizes ("2GiB", "512M", 1073741824) to bytes.

Written by hand because the accepted grammar is tiny and the error message must name the key;
pydantic's ByteSize accepts decimal/binary units but gives messages we cannot control per key.

Units: KiB MiB GiB TiB (and the short K M G T, as truncate(1) and most Linux tools read them) are binary;
KB MB GB TB are decimal (powers of 1000), as disk vendors and EC2's console use them. A decimal size says so
in any error about it, since "2GB" is 2,000,000,000 bytes and not 2GiB. Numbers are exact: "1.5GiB" is fine,
a fraction of a byte is not; TOML floats, booleans and lists are refused.
"""

from __future__ import annotations

import re
from fractions import Fraction

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
DECIMAL_UNITS = frozenset({"kb", "mb", "gb", "tb"})
_SIZE = re.compile(r"\s*([0-9]{1,20}(?:\.[0-9]{1,9})?)\s*([a-zA-Z]{0,3})\s*")
# Larger than any volume EC2 offers (64 TiB): a bigger number is a typo, and would overflow disk tools.
MAX_SIZE = 64 * 1024**4
_EXAMPLES = "examples: 2GiB, 512MiB, 1073741824"


def parse_size(value: object) -> int:
    """Return a size in bytes. Binary units for K/M/G/T and KiB..; decimal for KB/MB/GB/TB."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        kind = {bool: "a boolean", float: "a decimal number", list: "a list", dict: "a table"}.get(
            type(value), type(value).__name__
        )
        raise ValueError(f"a size is a whole number of bytes or a string such as '2GiB', not {kind}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        if value > MAX_SIZE:
            shown = str(value) if value < 10**20 else f"a {len(str(value))}-digit number of"
            raise ValueError(f"{shown} bytes is more than 64TiB, the largest EC2 volume")
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"{value[:40]!r} is not a size ({_EXAMPLES})")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"unknown size unit {unit!r} (use B, KiB, MiB, GiB, TiB, or decimal KB, MB, GB, TB)")
    exact = Fraction(number) * factor
    if exact.denominator != 1:
        raise ValueError(f"{value!r} is not a whole number of bytes")
    size = int(exact)
    if size > MAX_SIZE:
        raise ValueError(f"{value!r} is more than 64TiB, the largest EC2 volume")
    return size


def is_decimal(value: object) -> bool:
    """Whether a size as written uses a decimal unit (KB, MB, GB, TB)."""
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    return match is not None and match.group(2).lower() in DECIMAL_UNITS


def format_size(size: int) -> str:
    """The shortest exact binary form: 2147483648 -> '2GiB'."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
