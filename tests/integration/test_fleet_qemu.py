"""`archami fleet` end to end on local VMs: 2 instances x 2 reboots of the Debian example, every held session's
ending classified, a new boot id every round, and nothing left behind, also when the run is killed
mid-round with SIGTERM or SIGKILL.

Under TCG, measured on this 2-core machine shared with other work: the 2x2 run 251 s at load ~7 (422 s at
load 15-19), the two kill runs side by side 100-180 s.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fleet_support import ARCHAMI, cli_env, overlays_under, read_report, wait_gone, wait_port_closed

from archami.artifacts import BuildResult
from archami.fleet.endings import ENDINGS
from archami.fleet.workdir import DEFAULT_WORK_ROOT
from archami.vm.ssh import read_banner

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_instances_two_reboots(debian_build: BuildResult, tmp_path: Path) -> None:
    run_id = f"fleet-test-{int(time.time())}"
    out = tmp_path / "report"
    started = time.monotonic()
    result = subprocess.run(
        [*ARCHAMI, "fleet", str(debian_build.image), "--instances", "2", "--reboots", "2", "--run-id", run_id,
         "--out", str(out), "--json"],
        capture_output=True, text=True, env=cli_env(), timeout=1800, check=False,
    )
    print(f"2x2 fleet wall time: {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report == read_report(out / "fleet-report.json")
    assert (out / "fleet-report.png").read_bytes()[:4] == b"\x89PNG"
    instances = report["instances"]
    assert len(instances) == 2
    for instance in instances:
        assert instance["error"] is None, instance
        assert instance["launch_seconds_to_ssh"] > 0
        assert [r["round"] for r in instance["rounds"]] == [1, 2]
        for outcome in instance["rounds"]:
            assert outcome["ending"] in ENDINGS, outcome
            assert outcome["seconds_to_close"] is not None
            assert outcome["boot_id_changed"] is True, outcome
            assert outcome["seconds_to_ssh"] > 0
            assert outcome["health"] is not None, outcome
            print(f"{instance['arm']} round {outcome['round']}: {outcome['ending']} after "
                  f"{outcome['seconds_to_close']}s, SSH after {outcome['seconds_to_ssh']}s, "
                  f"health {outcome['health']['state']}")
    summary = report["summary"]["image"]
    assert summary["rounds"] == 4
    assert sum(rate["count"] for rate in summary["endings"].values()) == 4
    assert report["host"]["wall_seconds"] > 0 and report["host"]["cpu_seconds"] > 0
    assert not wait_gone(run_id)
    assert not (DEFAULT_WORK_ROOT / run_id).exists()
    assert all(wait_port_closed(i["address"]) for i in instances)


class KilledRun:
    """One `archami fleet` of 1 instance x 1 reboot, to be killed with `sig` once its reboot is under way."""

    def __init__(self, image: Path, tmp_path: Path, sig: signal.Signals) -> None:
        self.sig = sig
        self.run_id = f"fleet-kill-{sig.name.lower()}-{int(time.time())}"
        self.report_path = tmp_path / sig.name / "fleet-report.json"
        self.address = ""
        self.code: int | None = None
        self.process = subprocess.Popen(
            [*ARCHAMI, "fleet", str(image), "--instances", "1", "--reboots", "1", "--run-id", self.run_id,
             "--out", str(self.report_path.parent), "--no-plot"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env(),
        )

    def poll(self) -> bool:
        """Kill the run once it booted and then stopped answering SSH (its reboot is under way); True when done."""
        if self.code is not None:
            return True
        assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
        if not self.address and self.report_path.exists():
            instance = read_report(self.report_path)["instances"][0]  # type: ignore[index]
            if instance["launch_seconds_to_ssh"] is not None:
                self.address = instance["address"]
        if self.address and read_banner(int(self.address.rsplit(":", 1)[1])) is None:
            self.process.send_signal(self.sig)
            self.code = self.process.wait(timeout=120)
            return True
        return False


def test_killed_mid_round_leaves_nothing(debian_build: BuildResult, tmp_path: Path) -> None:
    """SIGTERM and SIGKILL, two runs side by side (two guests: what the host's two cores take)."""
    runs = [KilledRun(debian_build.image, tmp_path, sig) for sig in (signal.SIGTERM, signal.SIGKILL)]
    try:
        deadline = time.monotonic() + 900
        while not all([run.poll() for run in runs]):
            assert time.monotonic() < deadline, "a run never reached its reboot"
            time.sleep(0.5)
    finally:
        for run in runs:
            if run.process.poll() is None:
                run.process.kill()
    for run in runs:
        assert run.code != 0
        assert not wait_gone(run.run_id), f"QEMU or ssh outlived the run ({run.sig.name})"
        assert wait_port_closed(run.address), f"{run.address} still accepts connections ({run.sig.name})"
        run_dir = DEFAULT_WORK_ROOT / run.run_id
        assert not overlays_under(run_dir), f"an overlay survived {run.sig.name}"
        if run.sig == signal.SIGTERM:
            assert not run_dir.exists()
        else:  # nothing ran after SIGKILL: only the key and serial log remain, until --cleanup or the next run
            cleaned = subprocess.run([*ARCHAMI, "fleet", "--cleanup", run.run_id], capture_output=True, text=True,
                                     env=cli_env(), timeout=120, check=False)
            assert cleaned.returncode == 0, cleaned.stderr
            assert not run_dir.exists()
