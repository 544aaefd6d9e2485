"""archami.pacman.vercmp against pacman's own `vercmp` binary, plus the documented edge cases."""

from __future__ import annotations

import ctypes
import ctypes.util
import random
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archami.pacman.vercmp import newest, parse_evr, vercmp, version_key

VERCMP = shutil.which("vercmp")

# One bash process runs the binary for a whole batch: pairs arrive NUL-separated on stdin, results
# come back one per line. Forking per pair from Python would make a large sample slow.
_BATCH_SCRIPT = 'while IFS= read -r -d "" a && IFS= read -r -d "" b; do vercmp "$a" "$b"; done'


def real_vercmp(pairs: list[tuple[str, str]]) -> list[int]:
    assert VERCMP, "pacman's vercmp binary is missing: install pacman-package-manager (make deps)"
    payload = "".join(f"{a}\0{b}\0" for a, b in pairs).encode()
    out = subprocess.run(["bash", "-c", _BATCH_SCRIPT], input=payload, capture_output=True, check=True)
    results = [int(line) for line in out.stdout.decode().split()]
    assert len(results) == len(pairs)
    return results


# Versions built from the pieces pacman versions are made of: digit runs (with leading zeros and
# longer than 64 bits), letter runs, and every kind of separator including the epoch ':' and the
# release '-'. Arbitrary printable text is mixed in for the rest.
_digits = st.text("0123456789", min_size=1, max_size=22)
_letters = st.text("abcxyzABZ", min_size=1, max_size=4)
_separators = st.text(".-_+~:", min_size=1, max_size=2)
_token = st.one_of(_digits, _letters, _separators)
_structured = st.lists(_token, min_size=1, max_size=8).map("".join)
_printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
# vercmp reads a first argument of -h or --help as its option (it prints usage, no result): the oracle
# cannot compare those, and no package has such a version.
_version = st.one_of(_structured, _structured, _printable).filter(lambda v: v not in ("-h", "--help"))


@st.composite
def _version_pair(draw: st.DrawFn) -> tuple[str, str]:
    a = draw(_version)
    # Half the pairs share a prefix, where the interesting comparisons happen.
    if draw(st.booleans()):
        return a, draw(_version)
    cut = draw(st.integers(0, len(a)))
    return a, a[:cut] + draw(st.one_of(st.just(""), _structured))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_version_pair(), min_size=30, max_size=50))
def test_matches_pacman_vercmp_binary(pairs: list[tuple[str, str]]) -> None:
    """About 2400 generated pairs per run, compared in batches of 30-50 against the real binary."""
    expected = real_vercmp(pairs)
    for (a, b), want in zip(pairs, expected, strict=True):
        assert vercmp(a, b) == want, f"vercmp({a!r}, {b!r})"


def _random_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """The same shapes as the hypothesis strategy, drawn fast from a seeded generator."""
    rng = random.Random(seed)
    tokens = ["0", "1", "2", "9", "10", "007", "123456789012345678901", "a", "b", "rc", "alpha", "Z", "."]
    tokens += [".", "-", "_", "+", "~", ":", "..", "-1", ":1"]

    def version() -> str:
        return "".join(rng.choice(tokens) for _ in range(rng.randint(1, 7)))

    pairs = []
    for _ in range(count):
        a = version()
        b = version() if rng.random() < 0.5 else a[: rng.randint(0, len(a))] + rng.choice(["", version()])
        pairs.append((a, b))
    return pairs


def test_matches_libalpm_on_many_pairs() -> None:
    """100,000 pairs against alpm_pkg_vercmp in pacman's own library (loaded with ctypes, so no fork
    per pair). Debian's vercmp binary carries a static copy of the same version.c."""
    found = ctypes.util.find_library("alpm")
    assert found, "libalpm is missing: install pacman-package-manager (make deps)"
    alpm = ctypes.CDLL(found)
    alpm.alpm_pkg_vercmp.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    alpm.alpm_pkg_vercmp.restype = ctypes.c_int
    for a, b in _random_pairs(100_000, seed=20261125):
        want = alpm.alpm_pkg_vercmp(a.encode(), b.encode())
        assert vercmp(a, b) == (want > 0) - (want < 0), f"vercmp({a!r}, {b!r})"


# Documented behaviour (pacman's vercmp(8) and libalpm's test suite) and known quirks.
EDGE_CASES = [
    ("1.0", "1.0", 0),
    ("1.0a", "1.0", -1),  # a trailing letter segment is a pre-release
    ("1.0", "1.0.1", -1),
    ("1.0.1", "1.0", 1),
    ("1.0alpha", "1.0beta", -1),
    ("1.0beta", "1.0rc", -1),
    ("1.0rc", "1.0", -1),
    ("1.0", "1.0-1", 0),  # a missing pkgrel matches any pkgrel
    ("1.0-1", "1.0-2", -1),
    ("1.0-2", "1.0.1-1", -1),
    ("1:1.0", "2.0", 1),  # epoch wins over everything
    ("0:1.0", "1.0", 0),
    (":1.0", "1.0", 0),  # empty epoch is 0
    ("1.0..1", "1.0.1", 1),  # longer separator run is newer
    ("1.0", "1_0", 0),  # separator kind does not matter
    ("1.0~rc1", "1.0", 1),  # unlike dpkg, '~' is just a separator
    ("01", "1", 0),  # leading zeros are ignored
    ("1.0.0", "1.0", 1),
    ("1.0a1", "1.0", -1),
    ("1.0.a", "1.0.1", -1),  # letters are older than numbers
    ("a", "1", -1),
    ("18446744073709551617", "18446744073709551616", 1),  # beyond 64 bits
    ("1.2-3-4", "1.2-3-5", -1),  # pkgrel starts at the last '-'
    ("1.0-1.1", "1.0-1", 1),
]


@pytest.mark.parametrize(("a", "b", "want"), EDGE_CASES)
def test_documented_edge_cases(a: str, b: str, want: int) -> None:
    assert vercmp(a, b) == want
    assert vercmp(b, a) == -want


def test_edge_cases_agree_with_binary() -> None:
    assert real_vercmp([(a, b) for a, b, _ in EDGE_CASES]) == [want for _, _, want in EDGE_CASES]


def test_parse_evr() -> None:
    assert parse_evr("2:1.0-3") == ("2", "1.0", "3")
    assert parse_evr("1.0") == ("0", "1.0", None)
    assert parse_evr("1-2:3") == ("0", "1", "2:3")  # ':' after a '-' is not an epoch


def test_sorting_and_newest() -> None:
    versions = ["1.0-1", "1:0.1-1", "1.0a-1", "1.0.1-1", "0.9-10"]
    assert sorted(versions, key=version_key) == ["0.9-10", "1.0a-1", "1.0-1", "1.0.1-1", "1:0.1-1"]
    assert newest(versions) == "1:0.1-1"
    with pytest.raises(ValueError):
        newest([])
