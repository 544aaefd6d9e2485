"""Which instance boots and reboots when: pure planning, so the A/B arms share the host's load evenly.

Slots alternate between arms (a-0, b-0, a-1, b-1, ...), so with a bounded worker pool both arms are always
being rebooted side by side; each round starts one place further along the list, so no instance always
goes first, when the host is least busy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from archami.fleet.backend import Slot

T = TypeVar("T")


def interleave(arms: Sequence[str], per_arm: int) -> list[Slot]:
    return [Slot(arm, index) for index in range(per_arm) for arm in arms]


def round_order(items: Sequence[T], round_number: int) -> list[T]:
    """`items` rotated by the (1-based) round number minus one."""
    if not items:
        return []
    shift = (round_number - 1) % len(items)
    return [*items[shift:], *items[:shift]]
