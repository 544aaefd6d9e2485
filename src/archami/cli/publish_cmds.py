"""`archami publish` and `archami prune`: the AWS stage (every client can point at one emulator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
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
from archami.config.publish import DEFAULT_SSM_PREFIX, PublishSettings, apply_overrides, parse_regions
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


@app.command()
def prune(
    regions: Annotated[
        str, typer.Option("--regions", help="Comma-separated regions, or 'all': every enabled region of the partition.")
    ] = "all",
    keep: Annotated[
        int | None, typer.Option("--keep", help="Keep the newest N releases per variant.", callback=A.positive)
    ] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Remove releases registered before DATE (YYYY-MM-DD).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only this image family (definition name).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; change nothing.")] = False,
    endpoint_url: EndpointOpt = None,
    source_region: Annotated[str | None, typer.Option("--source-region", help="Region listing the others.")] = None,
    ssm_prefix: Annotated[
        str, typer.Option("--ssm-prefix", help="SSM path of the 'latest' parameters to drop.")
    ] = DEFAULT_SSM_PREFIX,
    as_json: JsonOpt = False,
) -> None:
    """Deregister old releases' AMIs and delete their snapshots in every region."""
    cutoff = None
    if older_than:
        try:
            cutoff = datetime.fromisoformat(older_than)
        except ValueError as exc:
            raise ArchamiError(f"--older-than {older_than!r} is not a date (YYYY-MM-DD)") from exc
        cutoff = cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=UTC)
    given = {"regions": parse_regions(regions), "source_region": source_region, "ssm_prefix": ssm_prefix}
    where = apply_overrides(
        PublishSettings(), {k: v for k, v in given.items() if v is not None}, origin="command line"
    )
    actions = prune_releases(
        Clients(AwsSettings(endpoint_url=endpoint_url)), where.regions, source_region=where.source_region,
        family=name, keep=keep, older_than=cutoff, dry_run=dry_run, ssm_prefix=where.ssm_prefix,
    )
    if as_json:
        print(json.dumps({"dry_run": dry_run, "removed": [a.__dict__ for a in actions]}, indent=2))
        return
    table = Table(title=("would remove" if dry_run else "removed") + f": {len(actions)} AMI(s)")
    for column in ("region", "name", "AMI", "snapshots"):
        table.add_column(column)
    for a in actions:
        table.add_row(a.region, a.name, a.ami_id, " ".join(a.snapshot_ids))
    console.print(table)
