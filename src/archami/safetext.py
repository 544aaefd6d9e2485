"""Checks the configuration-file writers apply to every value before it goes into a file.

The schema already refuses bad values; the writers check again (a value can come from elsewhere: the
environment, a backend, the image itself), so a newline can never start a new section or directive.
"""

from __future__ import annotations

import re

from archami.errors import ArchamiError

# One token of a line-oriented configuration file: no whitespace, no control characters, no comment sign.
_TOKEN = re.compile(r"[^\s#\x00-\x1f\x7f\"'\\]+")


class UnsafeValueError(ArchamiError):
    """A value cannot be written into a configuration file as it is."""

    exit_code = 2


def token(value: str, what: str) -> str:
    """`value` as one whitespace-free token (file names, URLs, UUIDs, option values)."""
    if not _TOKEN.fullmatch(value):
        raise UnsafeValueError(f"refusing to write {what} {value!r}: it must be one word without spaces, quotes, "
                               "'#', '\\\\' or control characters")
    return value


def one_line(value: str, what: str) -> str:
    """`value` as the rest of a line (titles, comments): no line breaks or other control characters."""
    if any(ord(c) < 32 or ord(c) == 127 or c in "\u0085\u2028\u2029" for c in value):
        raise UnsafeValueError(f"refusing to write {what} {value!r}: it holds a line break or control character")
    return value


def matching(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise UnsafeValueError(f"refusing to write {what} {value!r}: not a valid {what}")
    return value
