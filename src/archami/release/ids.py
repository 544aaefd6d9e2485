"""Release ids: `YYYY.MM.DD` for the first release of a day, then `YYYY.MM.DD.1`, `.2`, ...

Ids sort by (date, sequence), never as strings: '2026.11.25.10' comes after '2026.11.25.9'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from archami.errors import ArchamiError

_ID = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})(?:\.([1-9]\d*))?$")


@dataclass(frozen=True, order=True)
class ReleaseId:
    day: date
    sequence: int = 0  # 0: the day's first release (no suffix)

    def __str__(self) -> str:
        base = self.day.strftime("%Y.%m.%d")
        return f"{base}.{self.sequence}" if self.sequence else base

    @classmethod
    def parse(cls, text: str) -> ReleaseId:
        match = _ID.match(text)
        if not match:
            raise ArchamiError(f"{text!r} is not a release id (YYYY.MM.DD or YYYY.MM.DD.N)")
        year, month, day, seq = match.groups()
        try:
            when = date(int(year), int(month), int(day))
        except ValueError as exc:
            raise ArchamiError(f"{text!r} is not a release id: {exc}") from None
        return cls(when, int(seq or 0))


def is_release_id(text: str) -> bool:
    try:
        ReleaseId.parse(text)
    except ArchamiError:
        return False
    return True


def next_release_id(today: date, taken: Iterable[str]) -> str:
    """The id for a new release on `today`: the day's first free sequence number after any taken one."""
    same_day = [r.sequence for r in (ReleaseId.parse(t) for t in taken if is_release_id(t)) if r.day == today]
    return str(ReleaseId(today, max(same_day) + 1 if same_day else 0))


def sort_key(release_id: str) -> ReleaseId:
    return ReleaseId.parse(release_id)
