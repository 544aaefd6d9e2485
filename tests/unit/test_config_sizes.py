"""The size parser: properties over generated input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archami.config.sizes import MAX_SIZE, format_size, parse_size


@given(st.integers(min_value=0, max_value=MAX_SIZE))
def test_format_then_parse_round_trips(n: int) -> None:
    assert parse_size(format_size(n)) == n


@given(st.integers(min_value=0, max_value=64), st.sampled_from(["K", "KiB", "M", "MiB", "G", "GiB", "T"]))
def test_binary_units(n: int, unit: str) -> None:
    factor = {"K": 1024, "KiB": 1024, "M": 1024**2, "MiB": 1024**2, "G": 1024**3, "GiB": 1024**3, "T": 1024**4}
    assert parse_size(f"{n}{unit}") == n * factor[unit]
    assert parse_size(f" {n} {unit.lower()} ") == n * factor[unit]


@given(st.text())
def test_arbitrary_text_never_crashes_differently(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_size(text) >= 0


@pytest.mark.parametrize("bad", ["", "GiB", "-1G", "1 XB", "1.2.3G", True])
def test_rejects(bad: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)  # type: ignore[arg-type]


def test_decimal_units() -> None:
    assert parse_size("2GB") == 2_000_000_000
    assert parse_size(5) == 5
