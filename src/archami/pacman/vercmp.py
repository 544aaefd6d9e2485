"""Package version comparison with exactly pacman's rules (libalpm's alpm_pkg_vercmp).

Written by hand because no maintained Python library implements pacman's ordering, and calling the
`vercmp` binary per comparison is too slow for sorting a repository. The algorithm follows
lib/libalpm/version.c (itself rpm's rpmvercmp + parseEVR), including its quirks, and is checked
against the real binary in tests/unit/test_pacman_vercmp.py.

A version is `[epoch:]pkgver[-pkgrel]`. Epochs compare first, then pkgver, then pkgrel only when both
sides have one (so `1.0` equals `1.0-5`). Each part is split into runs of ASCII digits and runs of ASCII
letters; anything else is a separator, and only the *number* of separator characters matters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


def _isdigit(c: str) -> bool:
    return "0" <= c <= "9"


def _isalpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def _isalnum(c: str) -> bool:
    return _isdigit(c) or _isalpha(c)


def _cmp(a: str, b: str) -> int:
    """strcmp as libalpm uses it: byte-wise (our segments are ASCII letters or digits only)."""
    return (a > b) - (a < b)


def parse_evr(evr: str) -> tuple[str, str, str | None]:
    """Split `[epoch:]version[-release]` like libalpm's parseEVR: (epoch, version, release or None).

    The epoch is the leading run of digits only when a ':' follows it; the release starts after the
    LAST '-' found after those digits.
    """
    end = 0
    while end < len(evr) and _isdigit(evr[end]):
        end += 1
    dash = evr.rfind("-", end)
    if end < len(evr) and evr[end] == ":":
        epoch, version_start = (evr[:end] or "0"), end + 1
    else:
        epoch, version_start = "0", 0
    if dash >= 0:
        return epoch, evr[version_start:dash], evr[dash + 1 :]
    return epoch, evr[version_start:], None


def rpmvercmp(a: str, b: str) -> int:
    """Compare one version part (epoch, pkgver or pkgrel): -1, 0 or 1."""
    if a == b:
        return 0
    i = j = 0  # start of the current segment ("one"/"two" in version.c)
    pi = pj = 0  # end of the previous segment ("ptr1"/"ptr2")
    while i < len(a) and j < len(b):
        while i < len(a) and not _isalnum(a[i]):
            i += 1
        while j < len(b) and not _isalnum(b[j]):
            j += 1
        if i >= len(a) or j >= len(b):
            break
        # Different separator lengths decide on their own ("1.0" vs "1..0").
        if i - pi != j - pj:
            return -1 if i - pi < j - pj else 1
        pi, pj = i, j
        is_segment: Callable[[str], bool] = _isdigit if _isdigit(a[pi]) else _isalpha
        isnum = is_segment is _isdigit
        while pi < len(a) and is_segment(a[pi]):
            pi += 1
        while pj < len(b) and is_segment(b[pj]):
            pj += 1
        if pj == j:
            # Segment types differ: a number is always newer than letters.
            return 1 if isnum else -1
        one, two = a[i:pi], b[j:pj]
        if isnum:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        rc = _cmp(one, two)
        if rc:
            return rc
        i, j = pi, pj
    rest_a, rest_b = a[i:], b[j:]
    if not rest_a and not rest_b:
        return 0
    # What is left decides: a trailing letter segment is older than nothing ("1.0a" < "1.0"), anything
    # else left over is newer ("1.0.1" > "1.0").
    if (not rest_a and not (rest_b and _isalpha(rest_b[0]))) or (rest_a and _isalpha(rest_a[0])):
        return -1
    return 1


def vercmp(a: str, b: str) -> int:
    """Compare two full package versions as pacman does: -1 if a is older, 0 if equal, 1 if newer."""
    if a == b:
        return 0
    epoch_a, ver_a, rel_a = parse_evr(a)
    epoch_b, ver_b, rel_b = parse_evr(b)
    result = rpmvercmp(epoch_a, epoch_b)
    if result == 0:
        result = rpmvercmp(ver_a, ver_b)
        if result == 0 and rel_a is not None and rel_b is not None:
            result = rpmvercmp(rel_a, rel_b)
    return result


#: Sort key for lists of versions: `sorted(versions, key=version_key)`.
version_key = functools.cmp_to_key(vercmp)


def newest(versions: list[str]) -> str:
    """The newest of several versions (the first of equals)."""
    if not versions:
        raise ValueError("no versions to compare")
    best = versions[0]
    for candidate in versions[1:]:
        if vercmp(candidate, best) > 0:
            best = candidate
    return best
