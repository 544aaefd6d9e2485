"""Intervals for the fleet's rates: Wilson's score interval for one proportion, Newcombe's hybrid score
interval for the difference of two, and the order statistics the summary prints.

Wilson rather than the textbook Wald interval because fleet failure counts are small (the seed saw ~3%, and
0 after the fix): Wald gives a zero-width interval at 0 failures and can leave [0, 1]; Wilson stays inside and
keeps its coverage near 95% (Newcombe 1998, "Two-sided confidence intervals for the single proportion").
Newcombe's method 10 ("Interval estimation for the difference between independent proportions", 1998)
combines the two Wilson intervals and inherits those properties.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval


def wilson(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for successes/total; (0, 1) when nothing was observed."""
    if total < 0 or not 0 <= successes <= total:
        raise ValueError(f"need 0 <= successes <= total, got {successes}/{total}")
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    # Exact bounds at the edges: floating point leaves 1e-17 where the algebra gives 0 or 1.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


def newcombe_difference(
    successes_a: int, total_a: int, successes_b: int, total_b: int, z: float = Z_95
) -> tuple[float, float, float]:
    """(p_a - p_b, low, high): Newcombe's hybrid score interval (his method 10) for the difference."""
    p_a = successes_a / total_a if total_a else 0.0
    p_b = successes_b / total_b if total_b else 0.0
    low_a, high_a = wilson(successes_a, total_a, z)
    low_b, high_b = wilson(successes_b, total_b, z)
    difference = p_a - p_b
    low = difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return difference, max(-1.0, low), min(1.0, high)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by linear interpolation between order statistics (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
