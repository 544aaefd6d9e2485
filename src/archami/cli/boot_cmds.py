"""`archami boot IMAGE`: boot-test an image under QEMU with a local metadata service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from archami.artifacts import IMAGE_NAME, TestReport
from archami.cli.app import app, console
from archami.cli.args import output_dir, seconds
from archami.cli.output import StageLines, progress_console
from archami.config.sizes import parse_size
from archami.errors import ArchamiError
from archami.vm.boot import boot_test


def _optional_seconds(value: float | None) -> float | None:
    return None if value is None else seconds(value)


def resolve_image(path: Path) -> Path:
    """IMAGE may be the image file or a build output directory holding image.raw."""
    image = path / IMAGE_NAME if path.is_dir() else path
    if not image.is_file():
        raise ArchamiError(f"{path}: no image (give an image file or a build directory with {IMAGE_NAME})")
    return image


def render_report(report: TestReport) -> Table:
    verdict = "[green]passed[/]" if report.ok else "[red]FAILED[/]"
    seconds = f"{report.boot_to_ssh_seconds:.1f}s" if report.boot_to_ssh_seconds is not None else "-"
    table = Table(title=f"boot test ({report.firmware}, {report.accel or '?'}): {verdict}, boot to SSH {seconds}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]fail[/]", check.detail)
    return table


@app.command()
def boot(
    image: Annotated[Path, typer.Argument(help="Raw disk image, or a build directory with image.raw.")],
    firmware: Annotated[
        Literal["bios", "uefi"] | None,
        typer.Option(help="SeaBIOS (bios) or UEFI (OVMF; AAVMF for arm64). Default: bios, uefi for UEFI-only images."),
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the work dir: overlay disk, key, logs.")] = False,
    disk_size: Annotated[
        str | None, typer.Option("--disk-size", help="Volume larger than the image, e.g. 4GiB (tests grow-root).")
    ] = None,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Where the overlay and logs go.",
                                                  callback=output_dir)] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to wait for an SSH login (default: 300, 600 for arm64 under TCG).",
                     callback=_optional_seconds),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the TestReport as JSON.")] = False,
) -> None:
    """Boot IMAGE like an EC2 instance, log in with the key the local IMDS serves, check it, power off."""
    try:
        size = parse_size(disk_size) if disk_size else None
    except ValueError as exc:
        raise ArchamiError(f"--disk-size: {exc}") from exc
    path = resolve_image(image)
    with StageLines(progress_console(as_json), f"booting {path}") as stages:
        report = boot_test(path, firmware, disk_size=size, keep=keep, timeout=timeout, work_dir=work_dir,
                           progress=stages)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        console.print(render_report(report))
        if report.serial_log:
            console.print(f"serial console kept: {report.serial_log}")
        if report.work_dir:
            console.print(f"work dir kept: {report.work_dir}")
    if not report.ok:
        raise typer.Exit(1)
