"""Metadata values checked for what the agent does with them, never for the shape AWS gives them today.

A value is usable when it is safe where it goes: printable text of bounded length for the state file and the
log, a restricted alphabet where it becomes a file name or part of a URL. A value that fails is logged and
only the step that needed it is skipped: an instance-id of an unexpected shape must not cost the user their
SSH key.
"""

from __future__ import annotations

import re

MAX_ID = 255  # a file name's limit; EC2's instance ids are 19 characters
MAX_ZONE = 64
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Words of letters and digits joined by single hyphens: a DNS label and a file name alike (us-east-1,
# eusc-de-east-1, and whatever comes next).
_REGION = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")


def text(value: str, limit: int) -> str | None:
    """`value` without surrounding blanks, if it is non-empty, printable (no newline or escape sequence that
    could forge a log line) and at most `limit` characters; else None."""
    value = value.strip()
    return value if value and len(value) <= limit and value.isprintable() else None


def file_name(value: str) -> str:
    """A file name that stands for `value`: the value itself when it is a plain name, else a digest of it
    (so an id holding '/', '..' or odd characters can never point a path elsewhere)."""
    if _PLAIN_NAME.fullmatch(value):
        return value
    import hashlib  # only for ids of an unusual shape

    return "id-" + hashlib.sha256(value.encode()).hexdigest()[:32]


def region(value: str) -> bool:
    """Whether `value` can name a region in a file name and in a mirror's URL."""
    return len(value) <= MAX_ZONE and bool(_REGION.fullmatch(value))
