"""`archami mirrors rank|regions`: measure Arch mirrors and write ranked mirror lists."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from archami.cli.app import app, console, err_console
from archami.cli.args import (
    fraction_percent,
    hours,
    non_negative,
    output_dir,
    output_file,
    positive,
    seconds,
)
from archami.cli.output import StageLines
from archami.distro.arch_conf import mirrorlist
from archami.errors import ArchamiError
from archami.mirrors import (
    DEFAULT_PATH,
    REGION_COUNTRY,
    Measurement,
    MeasurementReport,
    MirrorFilter,
    Timeouts,
    filter_mirrors,
    load_status,
    measure,
    rank,
    region_lists,
    write_region_lists,
)
from archami.mirrors.rank import MeasurementRecord

mirrors_app = typer.Typer(help="Rank Arch Linux mirrors and write per-AWS-region mirror lists.", no_args_is_help=True)
app.add_typer(mirrors_app, name="mirrors")

StatusOpt = Annotated[str, typer.Option("--status", help="Mirror status JSON (reflector's format): a file or URL.")]
CountryOpt = Annotated[list[str], typer.Option("--country", help="Keep mirrors in this country (code or name).")]
ProtocolOpt = Annotated[list[str], typer.Option("--protocol", help="Allowed protocols (default: https).")]
AgeOpt = Annotated[float, typer.Option("--max-age", help="Hours since last sync, at most (0: any).", callback=hours)]
CompletionOpt = Annotated[
    float, typer.Option("--completion", help="Minimum completion percentage.", callback=fraction_percent)
]
DelayOpt = Annotated[
    float, typer.Option("--max-delay", help="Hours behind the main mirror, at most (0: any).", callback=hours)
]
IpOpt = Annotated[Literal["any", "ipv4", "ipv6"], typer.Option("--ip", help="IP version mirrors must support.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _filter(
    countries: list[str], protocols: list[str], max_age: float, completion: float, max_delay: float, ip: str
) -> MirrorFilter:
    return MirrorFilter(
        max_age=timedelta(hours=max_age) if max_age > 0 else None,
        min_completion=completion / 100.0,
        max_delay=timedelta(hours=max_delay) if max_delay > 0 else None,
        protocols=tuple(protocols or ["https"]),
        countries=tuple(countries),
        ipv4=ip == "ipv4",
        ipv6=ip == "ipv6",
    )


def _row(m: Measurement) -> dict[str, object]:
    return {"url": m.url, "ok": m.ok, "latency": m.latency, "seconds": m.seconds, "rate": m.rate, "error": m.error}


@mirrors_app.command("rank")
def rank_cmd(
    status: StatusOpt,
    country: CountryOpt = [],  # noqa: B006  (Typer reads list defaults; they are never mutated)
    protocol: ProtocolOpt = [],  # noqa: B006
    max_age: AgeOpt = 24.0,
    completion: CompletionOpt = 100.0,
    max_delay: DelayOpt = 0.0,
    ip: IpOpt = "any",
    path: Annotated[str, typer.Option(help="Repository file to download from each mirror.")] = DEFAULT_PATH,
    concurrency: Annotated[int, typer.Option(help="Mirrors measured at once.", callback=positive)] = 8,
    connect_timeout: Annotated[float, typer.Option(help="Seconds to connect.", callback=seconds)] = 3.0,
    timeout: Annotated[float, typer.Option(help="Seconds for a whole request (deadline).", callback=seconds)] = 10.0,
    limit: Annotated[
        int, typer.Option(help="Mirrors in the written list (0: all that answered).", callback=non_negative)
    ] = 10,
    out: Annotated[Path | None, typer.Option(help="Write the ranked mirrorlist here.", callback=output_file)] = None,
    measurements: Annotated[
        Path | None,
        typer.Option(help="Write the raw measurements (JSON) here, for `archami mirrors regions`.",
                     callback=output_file),
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region these measurements were made in.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Filter mirrors by status, measure them, and print or write the fastest first."""
    if region is not None and region not in REGION_COUNTRY:
        raise ArchamiError(f"unknown AWS region {region!r}")
    candidates = filter_mirrors(load_status(status), _filter(country, protocol, max_age, completion, max_delay, ip))
    if not candidates:
        raise ArchamiError("no mirror in the status document passed the filter")
    what = f"measuring {len(candidates)} mirror(s), {concurrency} at a time, {timeout:g}s deadline"
    with StageLines(err_console, what) as stages:
        done: list[Measurement] = []
        lock = threading.Lock()

        def measured(m: Measurement) -> None:  # each mirror as it answers (or fails), counted; from the workers
            result = f"{m.seconds or 0:.3f}s" if m.ok else f"failed: {m.error}"
            with lock:
                done.append(m)
                stages(f"{len(done)}/{len(candidates)} {m.url} {result}")

        results = measure(candidates, path=path, timeouts=Timeouts(connect=connect_timeout, deadline=timeout),
                          concurrency=concurrency, on_result=measured)
    ranked = rank(results)
    if measurements is not None:
        report = MeasurementReport(
            region=region, path=path, deadline=timeout, measurements=[MeasurementRecord.of(m) for m in results]
        )
        report.write(measurements)
    by_url = {m.url: m for m in candidates}
    best = ranked[:limit] if limit > 0 else ranked
    if out is not None:
        if not best:
            raise ArchamiError("no mirror answered: not writing an empty mirrorlist")
        header = f"ranked by archami mirrors rank ({path}){f' in {region}' if region else ''}"
        out.write_text(mirrorlist([by_url[m.url].server for m in best], header=header))
    failures = [m for m in results if not m.ok]
    if as_json:
        print(json.dumps({"ranked": [_row(m) for m in ranked], "failed": [_row(m) for m in failures]}, indent=2))
        return
    table = Table(title=f"{len(ranked)} of {len(results)} mirror(s) answered")
    for column in ("#", "mirror", "latency s", "total s", "KiB/s", "country"):
        table.add_column(column)
    for i, m in enumerate(ranked, 1):
        rate = f"{(m.rate or 0) / 1024:.0f}"
        table.add_row(str(i), m.url, f"{m.latency or 0:.3f}", f"{m.seconds or 0:.3f}", rate, by_url[m.url].country_code)
    for m in failures:
        table.add_row("-", m.url, "", f"{m.seconds or 0:.3f}", "", f"[red]{m.error}[/]")
    console.print(table)


@mirrors_app.command("regions")
def regions_cmd(
    status: StatusOpt,
    measurements: Annotated[
        list[Path], typer.Argument(help="Measurement files from `mirrors rank --region R --measurements F`.")
    ] = [],  # noqa: B006
    out: Annotated[
        Path, typer.Option(help="Directory for <region>.mirrorlist and global.mirrorlist.", callback=output_dir)
    ] = Path("packages/ec2-pacman-mirrors/mirrorlists"),
    region: Annotated[list[str], typer.Option("--region", help="Only these regions (default: all known).")] = [],  # noqa: B006
    country: CountryOpt = [],  # noqa: B006
    protocol: ProtocolOpt = [],  # noqa: B006
    max_age: AgeOpt = 24.0,
    completion: CompletionOpt = 100.0,
    max_delay: DelayOpt = 0.0,
    ip: IpOpt = "any",
    top: Annotated[int, typer.Option(help="Mirrors per list.", callback=positive)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Merge per-region measurements into one mirrorlist per AWS region plus a global one."""
    files = [p for m in measurements for p in (sorted(m.glob("*.json")) if m.is_dir() else [m])]
    reports = [MeasurementReport.read(p) for p in files]
    mirrors = filter_mirrors(load_status(status), _filter(country, protocol, max_age, completion, max_delay, ip))
    lists = region_lists(mirrors, reports, region or tuple(REGION_COUNTRY), top=top)
    written = write_region_lists(lists, out)
    if as_json:
        rows = [{"region": e.region, "source": e.source, "servers": e.servers, "note": e.note} for e in lists]
        print(json.dumps({"out": str(out), "lists": rows}, indent=2))
        return
    table = Table(title=f"{len(written)} mirror list(s) in {out}")
    for column in ("region", "source", "mirrors", "first", "note"):
        table.add_column(column, overflow="fold")
    for e in lists:
        colour = {"measured": "green", "geography": "yellow", "global": "red"}[e.source]
        table.add_row(e.region, f"[{colour}]{e.source}[/]", str(len(e.servers)), e.servers[0], e.note)
    console.print(table)
