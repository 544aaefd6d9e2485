"""`archami validate`, `archami plan`, `archami schema`: the definition stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from archami.bootability import spec_problem
from archami.cli.app import app, console
from archami.config import load_definition
from archami.config.schema import Definition
from archami.config.spec import ImageSpec

DefinitionArg = Annotated[Path, typer.Argument(help="Image definition (TOML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def validate(file: DefinitionArg, as_json: JsonOpt = False) -> None:
    """Check an image definition; print one clear error (file, key, reason) if it is wrong."""
    loaded = load_definition(file)
    if as_json:  # {"definition", "name", "sha256", "variants": [ids]}; an error is the JSON error object
        print(json.dumps({"definition": str(file), "name": loaded.definition.name, "sha256": loaded.sha256,
                          "variants": [v.id for v in loaded.variants]}, indent=2))
        return
    console.print(f"[green]ok[/] {file}: {len(loaded.variants)} variant(s)")


def _tested_here(spec: ImageSpec) -> tuple[str, str | None]:
    """The boot test `archami release` runs for this variant on this machine, and why none or what it misses."""
    from archami.release.steps import boot_skip_reason, firmwares_for, not_checked_here

    reason = boot_skip_reason(spec.variant)
    if reason is not None:
        return "none", reason
    missing = not_checked_here(spec)
    note = f"{', '.join(missing)} not tested (QEMU here has none)" if missing else None
    return " + ".join(firmwares_for(spec.variant)) + (" (partial)" if missing else ""), note


@app.command()
def plan(file: DefinitionArg, as_json: JsonOpt = False) -> None:
    """Show the variants a definition expands to, which of them EC2 can boot, and how each is tested here."""
    loaded = load_definition(file)
    if as_json:
        rows = [
            {"id": s.id, "label": s.variant.label, "boot_mode": s.variant.boot_mode, **s.variant.model_dump(),
             "publishable": spec_problem(s) is None, "refusal": spec_problem(s),
             "boot_test": _tested_here(s)[0], "boot_test_note": _tested_here(s)[1],
             "instance_type": s.instance_type, "flavour_description": s.flavour_description}
            for s in loaded.specs
        ]
        print(json.dumps({"definition": str(file), "sha256": loaded.sha256, "variants": rows}, indent=2))
        return
    table = Table(title=f"{loaded.definition.name}: {len(loaded.variants)} variant(s)")
    for column in ("variant", "release", "root device", "virtualization", "arch", "flavour", "kernel", "boot mode",
                   "EC2 can boot it", "boot test here"):
        table.add_column(column, no_wrap=column == "variant")
    notes: list[str] = []
    for s in loaded.specs:
        v, refusal = s.variant, spec_problem(s)
        tested, why = _tested_here(s)
        if refusal:
            notes.append(f"[red]{v.id}[/] is not released: {escape(refusal)}")
        elif v.virtualization == "paravirtual":
            notes.append(f"{v.id}: pv-grub can load only gzip or xz kernels: checked on the built kernel")
        if why and not refusal:
            notes.append(f"{v.id}: boot test: {escape(why)}")
        flavour = v.flavour + (f" ({s.instance_type})" if s.instance_type else "")
        table.add_row(
            v.id, v.release, v.root_device, v.virtualization, v.architecture, flavour,
            f"{v.kernel_package} ({v.kernel_channel})", v.boot_mode, "[red]no[/]" if refusal else "yes", tested,
        )
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)


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
