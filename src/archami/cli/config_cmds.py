"""`archami validate`, `archami plan`, `archami schema`: the definition stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.table import Table

from archami.cli.app import app, console
from archami.config import load_definition
from archami.config.schema import Definition

DefinitionArg = Annotated[Path, typer.Argument(help="Image definition (TOML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def validate(file: DefinitionArg) -> None:
    """Check an image definition; print one clear error (file, key, reason) if it is wrong."""
    loaded = load_definition(file)
    console.print(f"[green]ok[/] {file}: {len(loaded.variants)} variant(s)")


@app.command()
def plan(file: DefinitionArg, as_json: JsonOpt = False) -> None:
    """Show the variants a definition expands to."""
    loaded = load_definition(file)
    if as_json:
        rows = [{"id": v.id, "label": v.label, "boot_mode": v.boot_mode, **v.model_dump()} for v in loaded.variants]
        print(json.dumps({"definition": str(file), "sha256": loaded.sha256, "variants": rows}, indent=2))
        return
    table = Table(title=f"{loaded.definition.name}: {len(loaded.variants)} variant(s)")
    for column in ("variant", "release", "root device", "virtualization", "arch", "flavour", "kernel", "boot mode"):
        table.add_column(column)
    for v in loaded.variants:
        table.add_row(
            v.id, v.release, v.root_device, v.virtualization, v.architecture, v.flavour,
            f"{v.kernel_package} ({v.kernel_channel})", v.boot_mode,
        )
    console.print(table)


def _rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        key = f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, f"{key}."))
            continue
        default = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
        kind = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        rows.append((key, kind, default, field.description or ""))
    return rows


@app.command()
def schema() -> None:
    """Print every definition setting: key, type, default and meaning (the one table that drives the rest)."""
    table = Table(title="image definition settings")
    for column in ("key", "type", "default", "meaning"):
        table.add_column(column, overflow="fold")
    for row in _rows(Definition):
        table.add_row(*row)
    console.print(table)
