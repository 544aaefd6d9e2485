"""`archami fleet IMAGE_OR_AMI`: the seed's mass reboot experiment, on local QEMU VMs or on EC2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from archami.artifacts import write_json_atomic
from archami.cli.app import app, console, err_console
from archami.errors import ArchamiError
from archami.fleet.backend import ArmSpec, FleetBackend
from archami.fleet.endings import ENDINGS
from archami.fleet.report import PLOT_NAME, REPORT_NAME, ArmSummary, FleetReport, Quantiles, Rate
from archami.fleet.rounds import Timeouts
from archami.fleet.workdir import DEFAULT_WORK_ROOT, new_run_id, remove_run_dir

EC2_DEFAULT_TYPE = "t3.micro"


def _rate(rate: Rate) -> str:
    return f"{rate.count}/{rate.total} {rate.rate:.1%} [{rate.low:.1%}, {rate.high:.1%}]"


def _seconds(q: Quantiles) -> str:
    if q.p50 is None or q.p95 is None:
        return "-"
    return f"{q.p50:.1f} / {q.p95:.1f}"


def render_summary(report: FleetReport) -> Table:
    table = Table(title=f"fleet {report.run_id} ({report.backend}): {report.instances_per_arm} instances x "
                        f"{report.reboots} reboots per arm; rates with 95% Wilson intervals")
    table.add_column("")
    arms: list[ArmSummary] = [report.summary[a.label] for a in report.arms if a.label in report.summary]
    for arm in arms:
        table.add_column(arm.label)
    if report.comparison:
        table.add_column(f"{report.comparison.other} - {report.comparison.baseline} (95% Newcombe)")
    rows: list[tuple[str, list[str]]] = [
        ("reboots", [str(a.rounds) for a in arms]),
        ("not closed (reset or hang)", [_rate(a.failure) for a in arms]),
        *[(f"ending: {e}", [_rate(a.endings[e]) for a in arms]) for e in ENDINGS],
        ("no SSH afterwards", [_rate(a.no_ssh) for a in arms]),
        ("boot id unchanged", [_rate(a.boot_id_unchanged) for a in arms]),
        ("health failed", [_rate(a.health_failed) for a in arms]),
        ("time to close p50 / p95 (s)", [_seconds(a.seconds_to_close) for a in arms]),
        ("time to SSH p50 / p95 (s)", [_seconds(a.seconds_to_ssh) for a in arms]),
        ("launch to SSH p50 / p95 (s)", [_seconds(a.launch_seconds_to_ssh) for a in arms]),
    ]
    for index, (name, cells) in enumerate(rows):
        extra = []
        if report.comparison:
            c = report.comparison
            extra = [f"{c.difference:+.1%} [{c.low:+.1%}, {c.high:+.1%}]" if index == 1 else ""]
        table.add_row(name, *cells, *extra)
    return table


def _qemu_backend(run_id: str, firmware: str, memory: int, logs: Path) -> FleetBackend:
    from archami.fleet.qemu import QemuFleet

    if firmware not in ("bios", "uefi"):
        raise ArchamiError(f"--firmware must be bios or uefi, not {firmware!r}")
    return QemuFleet(run_id, firmware="uefi" if firmware == "uefi" else "bios", memory_mib=memory, logs_dir=logs)


def _arm_image(value: str, backend: str) -> str:
    if backend == "ec2":
        if not value.startswith("ami-"):
            raise ArchamiError(f"{value}: the ec2 backend launches an AMI id (ami-...)")
        return value
    from archami.cli.boot_cmds import resolve_image

    return str(resolve_image(Path(value)))


@app.command()
def fleet(
    image: Annotated[str | None, typer.Argument(help="Image (file or build dir) for qemu, AMI id for ec2.")] = None,
    instances: Annotated[int, typer.Option("--instances", "-n", help="Instances per arm.")] = 2,
    reboots: Annotated[int, typer.Option("--reboots", "-m", help="Reboot rounds.")] = 2,
    backend: Annotated[str, typer.Option(help="qemu (local VMs) or ec2.")] = "qemu",
    compare: Annotated[
        str | None, typer.Option(help="A second image/AMI differing by one setting: an interleaved A/B run.")
    ] = None,
    label: Annotated[str, typer.Option(help="Name of the first arm.")] = "image",
    compare_label: Annotated[str, typer.Option(help="Name of the --compare arm.")] = "compare",
    parallel: Annotated[int | None, typer.Option(help="Instances booting/rebooting at once.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report directory (default ./RUN_ID).")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Name this run (default: generated).")] = None,
    cleanup: Annotated[
        str | None, typer.Option("--cleanup", help="Remove what run RUN_ID left behind, then exit.")
    ] = None,
    ssh_timeout: Annotated[float, typer.Option(help="Seconds for SSH to come back after a launch or reboot.")] = 600,
    firmware: Annotated[str, typer.Option(help="qemu: bios or uefi.")] = "bios",
    memory: Annotated[int, typer.Option(help="qemu: MiB per VM.")] = 512,
    region: Annotated[str | None, typer.Option(help="ec2: region (default: the profile's).")] = None,
    instance_type: Annotated[str, typer.Option(help="ec2: instance type.")] = EC2_DEFAULT_TYPE,
    spot: Annotated[bool, typer.Option("--spot", help="ec2: spot instances.")] = False,
    subnet: Annotated[str | None, typer.Option(help="ec2: subnet id (one subnet/AZ for the fleet).")] = None,
    vpc: Annotated[str | None, typer.Option(help="ec2: VPC of the security group.")] = None,
    availability_zone: Annotated[str | None, typer.Option("--az", help="ec2: availability zone.")] = None,
    ssh_cidr: Annotated[str, typer.Option(help="ec2: where SSH may come from.")] = "0.0.0.0/0",
    user: Annotated[str, typer.Option(help="ec2: login user of the AMI.")] = "root",
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="ec2: a local emulator.")] = None,
    attach: Annotated[Path | None, typer.Option(help="Attach the report to this release record.")] = None,
    plot: Annotated[bool, typer.Option(help="Write the PNG plot (needs archami[plot]).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Boot N instances (per arm), reboot each M times, and classify how every held SSH session ended."""
    if backend not in ("qemu", "ec2"):
        raise ArchamiError(f"--backend must be qemu or ec2, not {backend!r}")
    if cleanup is not None:
        _cleanup(cleanup, backend, region, endpoint_url, as_json)
        return
    if image is None:
        raise ArchamiError("give an image (qemu) or an AMI id (ec2), or --cleanup RUN_ID")
    arms = [ArmSpec(label, _arm_image(image, backend))]
    if compare is not None:
        if compare_label == label:
            raise ArchamiError("--label and --compare-label must differ")
        arms.append(ArmSpec(compare_label, _arm_image(compare, backend)))
    rid = run_id or new_run_id()
    report_dir = out or Path(rid)
    notes: list[str] = []
    if backend == "qemu":
        fleet_backend = _qemu_backend(rid, firmware, memory, report_dir / "serial")
    else:
        from archami.fleet.cost import estimate

        cost = estimate(instance_type, instances * len(arms), reboots, spot)
        err_console.print(f"estimated cost: {cost.detail}", highlight=False)
        notes.append(f"cost estimate: {cost.detail}")
        from archami.aws.clients import AwsSettings, Clients
        from archami.fleet.ec2 import Ec2Fleet

        clients = Clients(AwsSettings(endpoint_url=endpoint_url))
        fleet_backend = Ec2Fleet(
            rid, clients, region or clients.default_region, instance_type, user=user, ssh_cidr=ssh_cidr,
            spot=spot, subnet_id=subnet, vpc_id=vpc, availability_zone=availability_zone,
        )
    err_console.print(f"run id: {rid} (archami fleet --cleanup {rid} --backend {backend} removes its leftovers)",
                      highlight=False)

    def checkpoint(partial: FleetReport) -> None:
        write_json_atomic(report_dir / REPORT_NAME, partial)

    from archami.fleet.run import run_fleet

    report = run_fleet(
        fleet_backend, arms, instances, reboots, run_id=rid, parallel=parallel,
        timeouts=Timeouts(ssh=ssh_timeout), progress=lambda line: err_console.print(line, highlight=False),
        checkpoint=checkpoint, notes=notes,
    )
    checkpoint(report)
    plot_path = None
    if plot:
        from archami.fleet.plot import plot_report

        plot_path = plot_report(report, report_dir / PLOT_NAME)
    if attach is not None:
        from archami.fleet.attach import attach_to_release

        err_console.print(f"attached: {attach_to_release(attach, report, plot_path)}", highlight=False)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        console.print(render_summary(report))
        console.print(f"report: {report_dir / REPORT_NAME}" + (f", plot: {plot_path}" if plot_path else ""))


def _cleanup(run_id: str, backend: str, region: str | None, endpoint_url: str | None, as_json: bool) -> None:
    removed = remove_run_dir(DEFAULT_WORK_ROOT, run_id)
    if backend == "ec2":
        from archami.aws import fleet as ec2_fleet
        from archami.aws.clients import AwsSettings, Clients

        clients = Clients(AwsSettings(endpoint_url=endpoint_url))
        left = ec2_fleet.cleanup(clients.ec2(region or clients.default_region), run_id)
        removed += left.instances + left.security_groups + left.key_pairs
    if as_json:
        print(json.dumps({"run_id": run_id, "backend": backend, "removed": removed}, indent=2))
        return
    console.print(f"run {run_id}: removed {', '.join(removed) if removed else 'nothing (nothing was left)'}")
