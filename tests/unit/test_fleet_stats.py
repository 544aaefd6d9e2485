"""Wilson and Newcombe intervals against the published values of Newcombe (1998): Table I of "Two-sided
confidence intervals for the single proportion" (method 3, score without continuity correction) and
Table II of "Interval estimation for the difference between independent proportions" (method 10)."""

from __future__ import annotations

import pytest

from archami.fleet.stats import newcombe_difference, quantile, wilson


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_newcombe_table_one(successes: int, total: int, low: float, high: float) -> None:
    got = wilson(successes, total)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ((56, 70), (48, 80), 0.0524, 0.3339),
        ((9, 10), (3, 10), 0.1705, 0.8090),
        ((6, 7), (2, 7), 0.0582, 0.8062),
        ((5, 56), (0, 29), -0.0381, 0.1926),
        ((0, 10), (0, 20), -0.1611, 0.2775),
    ],
)
def test_newcombe_matches_table_two(a: tuple[int, int], b: tuple[int, int], low: float, high: float) -> None:
    difference, got_low, got_high = newcombe_difference(*a, *b)
    assert difference == pytest.approx(a[0] / a[1] - b[0] / b[1])
    assert (got_low, got_high) == pytest.approx((low, high), abs=5e-5)


def test_the_seeds_figures() -> None:
    """~3% of 1000 reboots against 0 of 1000: the interval excludes no difference."""
    difference, low, high = newcombe_difference(30, 1000, 0, 1000)
    assert low > 0 and low < difference < high
    assert wilson(0, 1000)[0] == 0.0 and wilson(1000, 1000)[1] == 1.0


def test_nothing_observed_is_the_whole_range() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_quantile_interpolates_between_order_statistics() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([float(v) for v in range(1, 21)], 0.95) == pytest.approx(19.05)
