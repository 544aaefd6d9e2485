"""Pure planning of a fleet run: interleaved slots, rotated rounds, the after-reboot probe's parser, the cost
estimate, and the sweep of run directories left by a killed run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from archami.errors import ArchamiError
from archami.fleet.cost import ON_DEMAND_USD_PER_HOUR, estimate
from archami.fleet.health import parse_after_reboot
from archami.fleet.schedule import interleave, round_order
from archami.fleet.workdir import OWNER_FILE, create_run_dir, remove_run_dir, run_dir, sweep_stale_runs


def test_slots_alternate_between_arms() -> None:
    slots = interleave(["a", "b"], 3)
    assert [s.name for s in slots] == ["a-0", "b-0", "a-1", "b-1", "a-2", "b-2"]
    # any window of two consecutive slots (what a 2-worker pool runs at once) holds both arms
    assert all({slots[i].arm, slots[i + 1].arm} == {"a", "b"} for i in range(0, len(slots) - 1, 2))


def test_rounds_rotate_who_goes_first() -> None:
    items = list(range(5))
    firsts = [round_order(items, r)[0] for r in range(1, 6)]
    assert sorted(firsts) == items
    assert all(sorted(round_order(items, r)) == items for r in range(1, 12))
    assert round_order([], 3) == []


def test_after_reboot_probe_output() -> None:
    boot_id, health = parse_after_reboot(
        "@@archami-fleet boot_id\n6f1c1d4e-0d1b-4f5c-9a43-2b1f1f0c7e11\n"
        "@@archami-fleet state\ndegraded\n"
        "@@archami-fleet failed\nsystemd-resolved.service loaded failed failed Network Name Resolution\n"
    )
    assert boot_id == "6f1c1d4e-0d1b-4f5c-9a43-2b1f1f0c7e11"
    assert not health.ok and health.state == "degraded" and health.failed_units == ["systemd-resolved.service"]
    _, healthy = parse_after_reboot("@@archami-fleet boot_id\nx\n@@archami-fleet state\nrunning\n"
                                    "@@archami-fleet failed\n")
    assert healthy.ok
    _, timed_out = parse_after_reboot("@@archami-fleet boot_id\nx\n@@archami-fleet state\n@@archami-fleet failed\n")
    assert not timed_out.ok and timed_out.state == "timeout"


def test_cost_grows_with_the_fleet_and_spot_is_cheaper() -> None:
    small, large = estimate("t3.micro", 4, 10), estimate("t3.micro", 100, 10)
    assert large.usd == pytest.approx(small.usd * 25, rel=1e-9)
    assert estimate("t3.micro", 4, 10, spot=True).usd < small.usd
    assert estimate("m1.small", 100, 10).usd > estimate("t3.micro", 100, 10).usd
    unknown = estimate("x9.mega", 1, 1)
    assert not unknown.price_known and unknown.usd >= estimate(max(ON_DEMAND_USD_PER_HOUR,
                                                                   key=ON_DEMAND_USD_PER_HOUR.__getitem__), 1, 1).usd


def test_stale_run_directories_are_swept(tmp_path: Path) -> None:
    live = create_run_dir(tmp_path, "fleet-live")
    assert (live / OWNER_FILE).read_text() == str(os.getpid())
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / "fleet-stale"
    stale.mkdir()
    (stale / OWNER_FILE).write_text(str(dead.pid))
    assert sweep_stale_runs(tmp_path) == ["fleet-stale"]
    assert live.is_dir() and not stale.exists()
    with pytest.raises(ArchamiError, match="still running"):
        remove_run_dir(tmp_path, "fleet-live")
    with pytest.raises(ArchamiError):
        run_dir(tmp_path, "../etc")
