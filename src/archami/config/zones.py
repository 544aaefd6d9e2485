"""Time zones and locales, checked against the data an image will have.

The trade-off: when a definition is validated the image does not exist yet, so its own tzdata and glibc
locale list cannot be read. What can be read is the build host's copy of the same data: the IANA time zone
database in /usr/share/zoneinfo (every distro ships the same database, and IANA keeps old names as links,
so a zone the host knows is one the image's tzdata knows) and glibc's list of supported locales
(/usr/share/i18n/SUPPORTED, the list locale-gen works from). When the host has that data, a name must be
in it; when it has not (no tzdata or no locales package on the host), only the syntax is checked and the
build's set_timezone step checks the zone again against the image's own database.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from pathlib import Path

SUPPORTED_LOCALES = Path("/usr/share/i18n/SUPPORTED")
# Zone names: IANA's rule (letters, digits, '_', '-', '+', in up to four '/'-separated parts, no dots).
_ZONE = re.compile(r"[A-Za-z0-9_+-]{1,32}(?:/[A-Za-z0-9_+-]{1,32}){0,3}")
ALWAYS_ZONES = frozenset({"UTC", "Etc/UTC"})  # work without tzdata: no /etc/localtime means UTC
# glibc locale names: language[_territory][.codeset][@modifier], or C / POSIX (with an optional codeset).
_LOCALE = re.compile(
    r"(?:C|POSIX|[a-z]{2,3}(?:_[A-Z]{2}|_[0-9]{3})?)(?:\.[A-Za-z0-9-]{1,32})?(?:@[A-Za-z0-9]{1,32})?"
)
ALWAYS_LOCALES = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8"})  # built into glibc (2.35 and later)


@functools.cache
def host_zones() -> frozenset[str]:
    """Zone names of the host's IANA database (empty when the host has none)."""
    try:
        return frozenset(zoneinfo.available_timezones())
    except OSError:
        return frozenset()


def timezone_error(zone: str) -> str | None:
    if not _ZONE.fullmatch(zone) or any(part in (".", "..") for part in zone.split("/")):
        return f"{zone!r} is not a time zone name (e.g. 'UTC', 'Europe/Berlin')"
    known = host_zones()
    if zone in ALWAYS_ZONES or not known or zone in known:
        return None
    return f"{zone!r} is not a time zone of the IANA database (e.g. 'UTC', 'Europe/Berlin')"


def normalise_locale(name: str) -> str:
    """glibc's own normalisation of the codeset: 'en_US.UTF-8' and 'en_US.utf8' are the same locale."""
    base, _, modifier = name.partition("@")
    language, dot, codeset = base.partition(".")
    codeset = re.sub(r"[^a-z0-9]", "", codeset.lower()) if dot else ""
    return language + (f".{codeset}" if codeset else "") + (f"@{modifier}" if modifier else "")


@functools.cache
def host_locales() -> frozenset[str]:
    """Normalised names of the locales glibc supports, from the host's SUPPORTED list (empty without it)."""
    try:
        text = SUPPORTED_LOCALES.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return frozenset(normalise_locale(line.split()[0]) for line in text.splitlines() if line.strip()
                     and not line.startswith("#"))


def locale_error(name: str) -> str | None:
    if not _LOCALE.fullmatch(name):
        return f"{name!r} is not a locale name (language[_TERRITORY][.codeset][@modifier], e.g. 'en_US.UTF-8')"
    known = host_locales()
    if name in ALWAYS_LOCALES or not known or normalise_locale(name) in known:
        return None
    return f"{name!r} is not a locale glibc supports (see {SUPPORTED_LOCALES}; e.g. 'en_US.UTF-8', 'C.UTF-8')"
