"""`run_fleet`: boot every slot, then M rounds of reboots, with a bounded worker pool; always clean up.

Round r of every instance finishes before round r+1 starts, so per-round figures compare like with like.
The pool lives as long as the run: QEMU and ssh clients get PR_SET_PDEATHSIG, which fires when the
*thread* that started them ends, so worker threads must outlive everything they started (they end only
at `shutdown`, after `backend.close()`).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

from archami.errors import ArchamiError
from archami.fleet.backend import ArmSpec, FleetBackend, Instance, Slot
from archami.fleet.report import Arm, FleetReport, HostUsage, InstanceResult, summarize
from archami.fleet.rounds import SessionRegistry, Timeouts, reboot_round
from archami.fleet.schedule import round_order
from archami.vm import ssh
from archami.vm.qemu import signals_raise

Progress = Callable[[str], None]
Checkpoint = Callable[[FleetReport], None]


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # QEMU and ssh, once reaped
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _host_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _wait_all(futures: list[Future[object]]) -> None:
    """Wait with a timeout so signals reach the main thread promptly; re-raise a worker's bug."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()


def run_fleet(
    backend: FleetBackend,
    arms: list[ArmSpec],
    per_arm: int,
    reboots: int,
    *,
    run_id: str,
    parallel: int | None = None,
    timeouts: Timeouts | None = None,
    progress: Progress = lambda _: None,
    checkpoint: Checkpoint = lambda _: None,
    notes: list[str] | None = None,
) -> FleetReport:
    """Run the experiment; the returned report is summarised. `checkpoint` gets the report after every
    phase, so an interrupted run still leaves what it measured."""
    if per_arm < 1 or reboots < 0:
        raise ArchamiError("--instances must be at least 1 and --reboots at least 0")
    limits = timeouts or Timeouts()
    workers = parallel or backend.default_parallel
    started = time.monotonic()
    cpu_start, ticks_start = _cpu_seconds(), _host_cpu_ticks()
    report = FleetReport(
        run_id=run_id, backend=backend.kind, started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        instances_per_arm=per_arm, reboots=reboots, parallel=workers,
        arms=[Arm(label=a.label, image=a.image) for a in arms], notes=list(notes or []),
    )
    registry = SessionRegistry()
    lock = threading.Lock()  # results are written by the workers and read by checkpoints
    results: dict[str, InstanceResult] = {}
    live: list[Instance] = []

    def launch(slot: Slot) -> None:
        result = results[slot.name]
        try:
            instance = backend.boot(slot)
        except ArchamiError as exc:
            result.error = f"launch failed: {exc}"
            return
        with lock:
            result.name, result.instance_type = instance.name, instance.instance_type
            result.address = f"{instance.endpoint.host}:{instance.endpoint.port}"
        save()  # where each instance is, as soon as it is known
        try:
            logged_in = ssh.wait_for_login(
                instance.endpoint.port, instance.endpoint.key, instance.launched_at + limits.ssh,
                user=instance.endpoint.user, host=instance.endpoint.host,
                still_running=lambda: instance.alive() and not registry.cancelled.is_set(),
            )
        except ArchamiError as exc:
            result.error = f"no SSH after launch: {exc}"
            return
        result.launch_seconds_to_ssh = round(logged_in - instance.launched_at, 2)
        live.append(instance)
        progress(f"{slot.name} ({instance.name}) up after {result.launch_seconds_to_ssh:.0f}s")

    def reboot(instance: Instance, number: int) -> None:
        outcome = reboot_round(instance, number, limits, registry, started)
        if registry.cancelled.is_set():
            return  # cut short by the interruption (instances killed under it): not a measurement
        with lock:
            results[instance.slot.name].rounds.append(outcome)
        progress(f"round {number} {instance.slot.name}: {outcome.ending or 'not run'}"
                 + (f", SSH after {outcome.seconds_to_ssh:.0f}s" if outcome.seconds_to_ssh is not None else "")
                 + (f" ({outcome.error})" if outcome.error else ""))

    def snapshot() -> FleetReport:
        with lock:
            ordered = [results[s.name].model_copy(deep=True) for s in slots]
        return summarize(report.model_copy(update={"instances": ordered}))

    def save() -> None:
        checkpoint(snapshot())

    def finished(interrupted: str | None = None) -> FleetReport:
        final = snapshot()
        ticks_end = _host_cpu_ticks()
        busy = None
        if ticks_start and ticks_end and ticks_end[1] > ticks_start[1]:
            busy = round((ticks_end[0] - ticks_start[0]) / (ticks_end[1] - ticks_start[1]), 3)
        final.host = HostUsage(
            wall_seconds=round(time.monotonic() - started, 1), cpu_seconds=round(_cpu_seconds() - cpu_start, 1),
            host_busy_fraction=busy, load_average=round(os.getloadavg()[0], 2),
        )
        if interrupted:
            final.notes.append(f"interrupted ({interrupted}): the rounds above are all that ran")
        return final

    slots: list[Slot] = []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet")
    with signals_raise():  # SIGTERM/SIGHUP become SystemExit here, so the finally below runs
        try:
            slots = backend.open(arms, per_arm)
            for slot in slots:
                results[slot.name] = InstanceResult(arm=slot.arm, name=slot.name, instance_type="")
            progress(f"launching {len(slots)} instances, {workers} at a time")
            _wait_all([pool.submit(launch, slot) for slot in slots])
            save()
            for number in range(1, reboots + 1):
                order = {s.name: i for i, s in enumerate(slots)}
                current = sorted((i for i in live if i.alive()), key=lambda i: order[i.slot.name])
                _wait_all([pool.submit(reboot, i, number) for i in round_order(current, number)])
                _drop_lost(live, results)
                save()
        except (KeyboardInterrupt, SystemExit) as exc:
            _close(registry, backend, pool)
            if slots:  # what was measured before the interruption stays, with its cost in time and CPU
                checkpoint(finished(type(exc).__name__))
            raise
        finally:
            _close(registry, backend, pool)
    return finished()


def _close(registry: SessionRegistry, backend: FleetBackend, pool: ThreadPoolExecutor) -> None:
    """End the sessions, remove the instances, then let the workers go (idempotent)."""
    registry.cancel()
    backend.close()
    pool.shutdown(wait=True, cancel_futures=True)


def _drop_lost(live: list[Instance], results: dict[str, InstanceResult]) -> None:
    """An instance that did not come back is not rebooted again (its later rounds are simply missing)."""
    for instance in list(live):
        last = results[instance.slot.name].rounds[-1:] or None
        if last and last[0].seconds_to_ssh is None:
            results[instance.slot.name].error = f"lost in round {last[0].round}: {last[0].error}"
            live.remove(instance)
