"""The fleet report as a PNG for the release page: time to SSH per round (median and p95 per arm, every
reboot as a dot) above failures per round (sessions not closed: reset or hang).

matplotlib is an optional dependency (`pip install archami[plot]`): a plotting stack of ~60 MB that only
this picture needs. It is imported here only, with the non-interactive Agg backend (no display).
"""

from __future__ import annotations

from pathlib import Path

from archami.errors import ArchamiError
from archami.fleet.report import FleetReport, round_failed

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def plot_report(report: FleetReport, out: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ArchamiError("the fleet plot needs matplotlib: pip install 'archami[plot]'") from exc
    rounds = list(range(1, report.reboots + 1))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(3, 2))
    width = 0.8 / max(1, len(report.arms))
    for index, arm in enumerate(report.arms):
        colour = COLOURS[index % len(COLOURS)]
        summary = report.summary.get(arm.label)
        if summary is None:
            continue
        offset = (index - (len(report.arms) - 1) / 2) * width
        dots = [(r.round + offset, r.seconds_to_ssh) for i in report.instances if i.arm == arm.label
                for r in i.rounds if r.seconds_to_ssh is not None]
        if dots:
            top.scatter([x for x, _ in dots], [y for _, y in dots], s=12, alpha=0.4, color=colour)
        medians = [(s.round + offset, s.seconds_to_ssh.p50) for s in summary.per_round
                   if s.seconds_to_ssh.p50 is not None]
        p95s = [(s.round + offset, s.seconds_to_ssh.p95) for s in summary.per_round
                if s.seconds_to_ssh.p95 is not None]
        if medians:
            top.plot(*zip(*medians, strict=True), marker="o", color=colour, label=f"{arm.label} median")
        if p95s:
            top.plot(*zip(*p95s, strict=True), linestyle="--", color=colour, label=f"{arm.label} p95")
        failures = [sum(round_failed(r) for i in report.instances if i.arm == arm.label
                        for r in i.rounds if r.round == n) for n in rounds]
        rate = summary.failure
        bottom.bar([n + offset for n in rounds], failures, width=width, color=colour,
                   label=f"{arm.label}: {rate.count}/{rate.total} ({rate.rate:.1%}, 95% CI "
                         f"{rate.low:.1%}-{rate.high:.1%})")
    top.set_ylim(bottom=0)
    top.set_ylabel("seconds to SSH after reboot")
    top.set_title(f"archami fleet {report.run_id}: {report.instances_per_arm} instances x {report.reboots} "
                  f"reboots per arm ({report.backend})")
    top.grid(alpha=0.3)
    if top.get_legend_handles_labels()[0]:
        top.legend(fontsize=8)
    bottom.set_ylabel("sessions not closed")
    bottom.set_xlabel("reboot round")
    bottom.set_xticks(rounds)
    bottom.set_ylim(0, max(1, report.instances_per_arm))
    bottom.grid(alpha=0.3, axis="y")
    bottom.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
