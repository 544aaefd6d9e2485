"""The Arch Linux mirror status JSON (the document reflector reads) and filtering it.

The document's location is always given by the user (a file or a URL): archami names no remote host.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archami.boundedio import read_text_bounded
from archami.errors import ArchamiError


@dataclass(frozen=True)
class Mirror:
    url: str  # base URL ending in '/', e.g. https://mirror.example/archlinux/
    protocol: str
    country: str = ""
    country_code: str = ""
    last_sync: datetime | None = None
    completion_pct: float | None = None  # 0..1: share of the status checks that found it in sync
    delay: int | None = None  # seconds behind the tier-0 mirror, on average
    score: float | None = None  # the status page's own ranking: lower is better
    active: bool = True
    ipv4: bool = True
    ipv6: bool = False

    @property
    def server(self) -> str:
        """The mirrorlist `Server = ` value for this mirror."""
        return f"{self.url}$repo/os/$arch"

    def file_url(self, path: str) -> str:
        return self.url + path.lstrip("/")


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _mirror(entry: dict[str, Any]) -> Mirror:
    url = str(entry["url"])
    return Mirror(
        url=url if url.endswith("/") else url + "/",
        protocol=str(entry.get("protocol") or url.split(":", 1)[0]),
        country=str(entry.get("country") or ""),
        country_code=str(entry.get("country_code") or "").upper(),
        last_sync=_time(entry.get("last_sync")),
        completion_pct=None if entry.get("completion_pct") is None else float(entry["completion_pct"]),
        delay=None if entry.get("delay") is None else int(entry["delay"]),
        score=None if entry.get("score") is None else float(entry["score"]),
        active=bool(entry.get("active", True)),
        ipv4=bool(entry.get("ipv4", True)),
        ipv6=bool(entry.get("ipv6", False)),
    )


def parse_status(text: str, source: str = "<status>") -> list[Mirror]:
    try:
        document = json.loads(text)
        entries = document["urls"]
        return [_mirror(entry) for entry in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchamiError(f"{source}: not a mirror status document ({type(exc).__name__}: {exc})") from None


STATUS_LIMIT = 32 * 1024**2  # the real document is about 1 MiB


def load_status(source: str, timeout: float = 30.0) -> list[Mirror]:
    """Read the status document from a file path or an http(s) URL the user gave."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as response:
                data = response.read(STATUS_LIMIT + 1)
        except OSError as exc:
            raise ArchamiError(f"{source}: cannot fetch the mirror status: {exc}") from None
        if len(data) > STATUS_LIMIT:
            raise ArchamiError(f"{source}: the mirror status is larger than {STATUS_LIMIT:,} bytes")
        text = data.decode(errors="replace")
    else:
        text = read_text_bounded(Path(source), STATUS_LIMIT, "mirror status")
    return parse_status(text, source)


@dataclass(frozen=True)
class MirrorFilter:
    max_age: timedelta | None = timedelta(hours=24)  # last_sync no older than this
    min_completion: float = 1.0  # 0..1
    max_delay: timedelta | None = None
    protocols: Sequence[str] = ("https",)
    countries: Sequence[str] = ()  # country codes or names; empty = any
    ipv4: bool = False  # require IPv4
    ipv6: bool = False  # require IPv6


def filter_mirrors(mirrors: Iterable[Mirror], rules: MirrorFilter, now: datetime | None = None) -> list[Mirror]:
    """Active mirrors matching the rules; a mirror whose status lacks a value a rule needs is left out."""
    now = now or datetime.now(UTC)
    countries = {c.upper() for c in rules.countries}
    protocols = {p.lower() for p in rules.protocols}
    kept = []
    for m in mirrors:
        if not m.active or (protocols and m.protocol.lower() not in protocols):
            continue
        if countries and m.country_code.upper() not in countries and m.country.upper() not in countries:
            continue
        if rules.max_age is not None and (m.last_sync is None or now - m.last_sync > rules.max_age):
            continue
        if rules.min_completion > 0 and (m.completion_pct is None or m.completion_pct < rules.min_completion):
            continue
        if rules.max_delay is not None and (m.delay is None or m.delay > rules.max_delay.total_seconds()):
            continue
        if (rules.ipv4 and not m.ipv4) or (rules.ipv6 and not m.ipv6):
            continue
        kept.append(m)
    return kept


def by_status_score(mirrors: Iterable[Mirror]) -> list[Mirror]:
    """Order by the status document's score (lower is better; unscored last), then URL for stability."""
    return sorted(mirrors, key=lambda m: (m.score is None, m.score or 0.0, m.url))
