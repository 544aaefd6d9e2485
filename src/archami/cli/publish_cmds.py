"""`archami publish` and `archami prune`: the AWS stage (every client can point at one emulator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from archami.aws.clients import AwsSettings, Clients
from archami.aws.prune import prune as prune_releases
from archami.aws.publish import publish as publish_build
from archami.aws.regions import resolve_regions
from archami.cli import args as A  # argument checks: callback=A.positive
from archami.cli.app import app, console, err_console
from archami.errors import ArchamiError

EndpointOpt = Annotated[
    str | None, typer.Option("--endpoint-url", help="Send every AWS call to this endpoint (a local emulator).")
]
RegionsOpt = Annotated[
    str | None, typer.Option("--regions", help="Comma-separated regions, or 'all' (default: every enabled region).")
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


def _split_regions(regions: str | None) -> list[str] | None:
    if not regions:
        return None
    return [r.strip() for r in regions.split(",") if r.strip()]


@app.command()
def publish(
    build_dir: Annotated[
        Path, typer.Argument(help="A build directory: image.raw + manifest.json.", callback=A.existing_dir)
    ],
    regions: RegionsOpt = None,
    public: Annotated[bool, typer.Option("--public", help="Launch permission for everyone.")] = False,
    endpoint_url: EndpointOpt = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="State file (default BUILD_DIR/publish-ID...).", callback=A.output_file),
    ] = None,
    release_id: Annotated[
        str | None, typer.Option("--release-id", help="Release id (default: today).", callback=A.file_id)
    ] = None,
    source_region: Annotated[str | None, typer.Option("--source-region", help="Upload here, copy elsewhere.")] = None,
    method: Annotated[str, typer.Option("--method", help="ebs-direct, or s3-import (fallback).")] = "ebs-direct",
    encrypted: Annotated[bool, typer.Option("--encrypted", help="Encrypted snapshot (private AMIs).")] = False,
    bucket: Annotated[str | None, typer.Option("--bucket", help="S3 bucket (s3-import, instance-store).")] = None,
    ec2_cert: Annotated[
        Path | None, typer.Option("--ec2-cert", help="EC2 bundling certificate (PEM).", callback=A.existing_file)
    ] = None,
    deprecate_days: Annotated[
        int, typer.Option("--deprecate-days", help="Deprecate after N days; 0: never.", callback=A.non_negative)
    ] = 365,
    workers: Annotated[int, typer.Option("--workers", help="Parallel block uploads.", callback=A.positive)] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Upload, register, copy to every region, expose; re-run the same command to resume after a failure."""
    if method not in ("ebs-direct", "s3-import"):
        raise ArchamiError(f"--method must be ebs-direct or s3-import, not {method!r}")
    record = publish_build(
        build_dir,
        regions=_split_regions(regions),
        public=public,
        endpoint_url=endpoint_url,
        state_path=state,
        release_id=release_id,
        source_region=source_region,
        method=method,  # type: ignore[arg-type]
        encrypted=encrypted,
        bucket=bucket,
        ec2_certificate=ec2_cert,
        deprecate_after_days=deprecate_days or None,
        workers=workers,
        progress=None if as_json else RichUploadProgress(),
        log=(lambda line: None) if as_json else (lambda line: err_console.print(line, highlight=False)),
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
    regions: RegionsOpt = "all",
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
    clients = Clients(AwsSettings(endpoint_url=endpoint_url))
    region_list = resolve_regions(clients, _split_regions(regions), source_region)
    actions = prune_releases(clients, region_list, family=name, keep=keep, older_than=cutoff, dry_run=dry_run)
    if as_json:
        print(json.dumps({"dry_run": dry_run, "removed": [a.__dict__ for a in actions]}, indent=2))
        return
    table = Table(title=("would remove" if dry_run else "removed") + f": {len(actions)} AMI(s)")
    for column in ("region", "name", "AMI", "snapshots"):
        table.add_column(column)
    for a in actions:
        table.add_row(a.region, a.name, a.ami_id, " ".join(a.snapshot_ids))
    console.print(table)
