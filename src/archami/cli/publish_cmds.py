"""`archami publish` and `archami prune`: the AWS stage (every client can point at one emulator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from archami.artifacts import Manifest
from archami.aws.clients import AwsSettings, Clients
from archami.aws.publish import load_build
from archami.aws.publish import publish as publish_build
from archami.aws.published import prune as prune_releases
from archami.cli import args as A  # argument checks: callback=A.positive
from archami.cli.app import app, console, err_console
from archami.cli.publish_flags import publish_flags
from archami.config import load_definition
from archami.config.publish import PublishSettings, apply_overrides, parse_regions
from archami.errors import ArchamiError

EndpointOpt = Annotated[
    str | None, typer.Option("--endpoint-url", help="Send every AWS call to this endpoint (a local emulator).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class RichUploadProgress:
    """A byte-counting progress bar for the snapshot upload."""

    def __init__(self) -> None:
        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self._task: TaskID | None = None

    def begin(self, region: str, total_bytes: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(f"upload {region}", total=total_bytes)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)

    def end(self) -> None:
        if self._task is not None:
            total = self._progress.tasks[0].total
            self._progress.update(self._task, completed=total)  # all-zero blocks were skipped, not sent
        self._progress.stop()


def build_settings(
    manifest: Manifest, definition: Path | None, log: Callable[[str], None]
) -> tuple[PublishSettings, str]:
    """The [publish] table of the definition the build came from (or --definition), and where it was read."""
    path = definition or Path(manifest.definition_path)
    if definition is None and not path.is_file():
        log(f"{path} (the build's definition) is not here: publishing with the flags and the defaults")
        return PublishSettings(), "defaults"
    loaded = load_definition(path)
    if loaded.definition.name != manifest.definition_name:
        raise ArchamiError(f"{path} defines {loaded.definition.name!r}; the build is of {manifest.definition_name!r}")
    return loaded.definition.publish, str(path)


@app.command()
@publish_flags
def publish(
    build_dir: Annotated[
        Path, typer.Argument(help="A build directory: image.raw + manifest.json.", callback=A.existing_dir)
    ],
    definition: Annotated[
        Path | None,
        typer.Option("--definition", help="Definition whose \\[publish] table applies (default: the build's own)."),
    ] = None,
    endpoint_url: EndpointOpt = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="State file (default BUILD_DIR/publish-ID...).", callback=A.output_file),
    ] = None,
    release_id: Annotated[
        str | None, typer.Option("--release-id", help="Release id (default: today).", callback=A.file_id)
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Parallel block uploads.", callback=A.positive)] = 8,
    as_json: JsonOpt = False,
    *,
    overrides: dict[str, object],
) -> None:
    """Upload, register, copy to every region, expose; re-run the same command to resume after a failure."""
    def log(line: str) -> None:  # stderr, also with --json: stdout holds only the record
        err_console.print(line, highlight=False)

    _, manifest = load_build(build_dir)
    base, origin = build_settings(manifest, definition, log)
    record = publish_build(
        build_dir,
        apply_overrides(base, overrides, origin=origin),
        endpoint_url=endpoint_url,
        state_path=state,
        release_id=release_id,
        workers=workers,
        progress=RichUploadProgress(),
        log=log,
    )
    if as_json:
        print(record.model_dump_json(indent=2))
        return
    table = Table(title=f"{record.ami_name}")
    for column in ("region", "AMI", "snapshot", "public"):
        table.add_column(column)
    for region, image in record.regions.items():
        table.add_row(region, image.ami_id, image.snapshot_id or image.image_location or "", str(image.public))
    console.print(table)


def _since(older_than: str | None, keep_days: int | None, now: datetime) -> datetime | None:
    if older_than and keep_days is not None:
        raise ArchamiError("give --keep-days D or --older-than DATE, not both")
    if keep_days is not None:
        return now - timedelta(days=keep_days)
    if not older_than:
        return None
    try:
        cutoff = datetime.fromisoformat(older_than)
    except ValueError as exc:
        raise ArchamiError(f"--older-than {older_than!r} is not a date (YYYY-MM-DD)") from exc
    return cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=UTC)


@app.command()
def prune(
    regions: Annotated[
        str, typer.Option("--regions", help="Comma-separated regions, or 'all': every enabled region of the partition.")
    ] = "all",
    keep: Annotated[
        int | None, typer.Option("--keep", help="Keep the newest N releases per variant.", callback=A.positive)
    ] = None,
    keep_days: Annotated[
        int | None, typer.Option("--keep-days", min=0, help="Keep releases created in the last D days.")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Keep releases registered on or after DATE (YYYY-MM-DD).")
    ] = None,
    protect_previous: Annotated[
        int | None, typer.Option("--protect-previous", min=0, help="Releases before the current one that are "
                                 "never removed (default: the definition's publish.protect_previous, else 2).")
    ] = None,
    definition: Annotated[
        Path | None, typer.Option("--definition", help="Take the family, SSM prefix and protection window from "
                                  "this definition's \\[publish] table.", callback=A.existing_file)
    ] = None,
    releases_dir: Annotated[
        Path | None, typer.Option("--releases", help="Release records: their current release is never removed, "
                                  "and what is done is recorded in them and in prune-log.json.",
                                  callback=A.existing_dir)
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only this image family (definition name).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")] = False,
    endpoint_url: EndpointOpt = None,
    source_region: Annotated[str | None, typer.Option("--source-region", help="Region listing the others.")] = None,
    ssm_prefix: Annotated[
        str | None, typer.Option("--ssm-prefix", help="SSM path of the 'latest' parameters to drop.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply the lifecycle policy: keep the newest N / the last D days, never the current or a protected
    release; deprecate the old ones kept, deregister the rest and delete all their snapshots."""
    from archami.cli.prune_output import plan_table, prune_json, run_table
    from archami.release.policy import PrunePolicy
    from archami.release.prune_log import current_releases, locked, record_prune

    now = datetime.now(UTC)
    settings = PublishSettings()
    if definition is not None:
        family = load_definition(definition).definition
        settings, name = family.publish, name or family.name
    given = {"regions": parse_regions(regions), "source_region": source_region, "ssm_prefix": ssm_prefix}
    where = apply_overrides(settings, {k: v for k, v in given.items() if v is not None}, origin="command line")
    window = protect_previous if protect_previous is not None else settings.protect_previous
    policy = PrunePolicy(
        keep=keep, keep_since=_since(older_than, keep_days, now),
        protect_previous=window if settings.deregistration_protection or protect_previous is not None else None,
        current=frozenset(current_releases(releases_dir, name)) if releases_dir else frozenset(),
    )
    with locked(releases_dir):  # no `archami release` writes these records meanwhile
        report = prune_releases(
            Clients(AwsSettings(endpoint_url=endpoint_url)), where.regions, source_region=where.source_region,
            family=name, policy=policy, dry_run=dry_run, ssm_prefix=where.ssm_prefix, now=now,
        )
        log_path = record_prune(releases_dir, report, policy) if releases_dir and report.run else None
    if as_json:
        print(json.dumps(prune_json(report, policy, log_path), indent=2))
    else:
        console.print(plan_table(report))
        if report.run is not None:
            console.print(run_table(report.run))
            for step in report.run.not_implemented:
                err_console.print(f"{step.region} {step.ami_id}: {step.action} not done: {step.detail}")
    if report.run is not None and report.run.failed:
        first = report.run.failed[0]
        raise ArchamiError(f"{len(report.run.failed)} lifecycle call(s) failed, e.g. {first.action} {first.ami_id} "
                           f"in {first.region}: {first.detail} {' '.join(first.snapshots_left)}".rstrip())
