"""`archami audit IMAGE`: what must not ship in an AMI, found without booting or mounting the image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from archami.artifacts import AuditReport
from archami.audit import AuditError, audit_image, audit_root
from archami.cli.app import app, console
from archami.cli.boot_cmds import resolve_image
from archami.errors import ArchamiError


def render_audit(report: AuditReport) -> Table:
    verdict = "[green]clean[/]" if report.ok else f"[red]{len(report.findings)} finding(s)[/]"
    table = Table(title=f"audit of {report.target}: {verdict}")
    for column in ("rule", "path", "detail"):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        table.add_row(finding.rule, finding.path, finding.detail)
    return table


@app.command()
def audit(
    image: Annotated[Path, typer.Argument(help="Disk image, build directory, or (with --root) a root directory.")],
    root: Annotated[bool, typer.Option("--root", help="IMAGE is an unpacked root directory.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the AuditReport as JSON.")] = False,
) -> None:
    """Check an image for keys, secrets, history, password logins and build leftovers, and that it is a
    bootable system; exit 1 on findings, 4 when the image could not be audited."""
    try:
        report = audit_root(image) if root else audit_image(resolve_image(image))
    except AuditError:
        raise
    except ArchamiError as exc:  # whatever stopped the audit, it is "could not audit" (exit 4), not findings (1)
        raise AuditError(str(exc)) from exc
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        console.print(render_audit(report))
        if report.ok:
            console.print(f"rules checked: {', '.join(report.checked_rules)}")
    if not report.ok:
        raise typer.Exit(1)
