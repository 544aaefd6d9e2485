"""The fleet report: every instance's every round, and the summary computed from them (`summarize`).

The summary is always recomputed from the rounds, never edited by hand, so a report read back from disk
and summarised again gives the same figures.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from archami.fleet.endings import ENDINGS, FAILED_ENDINGS, Ending
from archami.fleet.stats import newcombe_difference, quantile, wilson

REPORT_SCHEMA_VERSION = 1
REPORT_NAME = "fleet-report.json"
PLOT_NAME = "fleet-report.png"


class Health(BaseModel):
    ok: bool
    state: str  # `systemctl is-system-running` (running, degraded, starting, ...)
    failed_units: list[str] = Field(default_factory=list)
    detail: str = ""


class RoundResult(BaseModel):
    """One reboot of one instance. `ending` None: the round could not start (no session opened)."""

    round: int  # 1-based
    ending: Ending | None
    exit_status: int | None = None  # remote exit status, when the session closed cleanly
    ssh_message: str = ""  # the ssh client's last words on stderr
    seconds_to_close: float | None = None  # reboot issued -> the held session ended
    boot_id_changed: bool | None = None
    seconds_to_ssh: float | None = None  # reboot issued -> the next successful login
    health: Health | None = None
    error: str | None = None
    started_at: float = 0.0  # seconds since the run started


class InstanceResult(BaseModel):
    arm: str
    name: str  # instance id (ec2) or VM name (qemu)
    instance_type: str
    address: str = ""  # host:port SSH went to
    launch_seconds_to_ssh: float | None = None  # launch (or QEMU start) -> the first login
    rounds: list[RoundResult] = Field(default_factory=list)
    error: str | None = None  # why it never came up, or was lost


class Rate(BaseModel):
    count: int
    total: int
    rate: float
    low: float  # 95% Wilson interval
    high: float

    @classmethod
    def of(cls, count: int, total: int) -> Rate:
        low, high = wilson(count, total)
        return cls(count=count, total=total, rate=count / total if total else 0.0, low=low, high=high)


class Quantiles(BaseModel):
    count: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, values: list[float]) -> Quantiles:
        return cls(count=len(values), p50=quantile(values, 0.5), p95=quantile(values, 0.95),
                   max=max(values) if values else None)


class RoundSummary(BaseModel):
    round: int
    attempted: int
    failures: int  # reset or hang
    lost: int  # no SSH afterwards, boot_id unchanged or health failed
    seconds_to_ssh: Quantiles


class ArmSummary(BaseModel):
    label: str
    rounds: int  # reboots attempted (instance x round)
    endings: dict[str, Rate]  # clean, eof, reset, hang
    failure: Rate  # the seed's failure: the connection was not closed (reset or hang)
    no_ssh: Rate  # SSH did not come back within the timeout
    boot_id_unchanged: Rate  # SSH came back but the machine had not rebooted
    health_failed: Rate
    seconds_to_close: Quantiles  # sessions that closed (clean or eof); a hang's time is only our bound
    seconds_to_ssh: Quantiles
    launch_seconds_to_ssh: Quantiles
    per_round: list[RoundSummary]


class Comparison(BaseModel):
    """other - baseline, for the failure rate, with Newcombe's 95% hybrid score interval."""

    baseline: str
    other: str
    difference: float
    low: float
    high: float


class Arm(BaseModel):
    label: str
    image: str  # image path or AMI id


class HostUsage(BaseModel):
    wall_seconds: float
    cpu_seconds: float  # archami and everything it started (QEMU, ssh), user + system
    host_busy_fraction: float | None = None  # the whole machine's CPU (other work included), /proc/stat
    load_average: float | None = None  # 1-minute load at the end


class FleetReport(BaseModel):
    schema_version: int = REPORT_SCHEMA_VERSION
    run_id: str
    backend: str
    started_at: str  # ISO 8601, UTC
    instances_per_arm: int
    reboots: int
    parallel: int
    arms: list[Arm]
    instances: list[InstanceResult] = Field(default_factory=list)
    summary: dict[str, ArmSummary] = Field(default_factory=dict)
    comparison: Comparison | None = None
    host: HostUsage | None = None
    estimated_cost_usd: float | None = None
    notes: list[str] = Field(default_factory=list)


def round_failed(result: RoundResult) -> bool:
    return result.ending in FAILED_ENDINGS


def round_lost(result: RoundResult) -> bool:
    """The instance did not come back as a healthy, rebooted machine."""
    return (result.seconds_to_ssh is None or result.boot_id_changed is not True
            or result.health is None or not result.health.ok)


def summarize_arm(label: str, instances: list[InstanceResult], reboots: int) -> ArmSummary:
    rounds = [r for i in instances for r in i.rounds if r.ending is not None]
    total = len(rounds)
    with_ssh = [r for r in rounds if r.seconds_to_ssh is not None]
    per_round = []
    for number in range(1, reboots + 1):
        these = [r for r in rounds if r.round == number]
        per_round.append(RoundSummary(
            round=number, attempted=len(these), failures=sum(round_failed(r) for r in these),
            lost=sum(round_lost(r) for r in these),
            seconds_to_ssh=Quantiles.of([r.seconds_to_ssh for r in these if r.seconds_to_ssh is not None]),
        ))
    return ArmSummary(
        label=label,
        rounds=total,
        endings={e: Rate.of(sum(r.ending == e for r in rounds), total) for e in ENDINGS},
        failure=Rate.of(sum(round_failed(r) for r in rounds), total),
        no_ssh=Rate.of(total - len(with_ssh), total),
        boot_id_unchanged=Rate.of(sum(r.boot_id_changed is False for r in with_ssh), len(with_ssh)),
        health_failed=Rate.of(sum(r.health is not None and not r.health.ok for r in with_ssh), len(with_ssh)),
        seconds_to_close=Quantiles.of(
            [r.seconds_to_close for r in rounds if r.seconds_to_close is not None and not round_failed(r)]
        ),
        seconds_to_ssh=Quantiles.of([r.seconds_to_ssh for r in with_ssh if r.seconds_to_ssh is not None]),
        launch_seconds_to_ssh=Quantiles.of(
            [i.launch_seconds_to_ssh for i in instances if i.launch_seconds_to_ssh is not None]
        ),
        per_round=per_round,
    )


def summarize(report: FleetReport) -> FleetReport:
    """The report with `summary` and `comparison` computed from its rounds (a new object)."""
    summary = {
        arm.label: summarize_arm(arm.label, [i for i in report.instances if i.arm == arm.label], report.reboots)
        for arm in report.arms
    }
    comparison = None
    if len(report.arms) == 2:
        base, other = (summary[a.label] for a in report.arms)
        difference, low, high = newcombe_difference(
            other.failure.count, other.failure.total, base.failure.count, base.failure.total
        )
        comparison = Comparison(baseline=base.label, other=other.label, difference=difference, low=low, high=high)
    return report.model_copy(update={"summary": summary, "comparison": comparison})
