"""`archami validate`, `archami plan`, `archami schema`: the definition stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from archami.bootability import spec_problem
from archami.cli.app import app, console
from archami.cli.plan_json import plan_document, tested_here
from archami.config import load_definition

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


@app.command()
def plan(file: DefinitionArg, as_json: JsonOpt = False) -> None:
    """Show the variants a definition expands to, which of them EC2 can boot, and how each is tested here."""
    loaded = load_definition(file)
    if as_json:  # matrix.include: a CI job matrix (cli/plan_json.py documents its fields)
        print(json.dumps(plan_document(loaded, file), indent=2))
        return
    table = Table(title=f"{loaded.definition.name}: {len(loaded.variants)} variant(s)")
    for column in ("variant", "release", "root device", "virtualization", "arch", "flavour", "kernel", "boot mode",
                   "EC2 can boot it", "boot test here"):
        table.add_column(column, no_wrap=column == "variant")
    notes: list[str] = []
    for s in loaded.specs:
        v, refusal = s.variant, spec_problem(s)
        tested, why = tested_here(s)
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


@app.command()
def schema(
    as_json: JsonOpt = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's Markdown table.")] = False,
    as_man: Annotated[bool, typer.Option("--man", help="Print the man page (roff), as docs/archami.1.")] = False,
) -> None:
    """Print every definition setting: key, type, default and meaning (the one table the README and man page
    are generated from: `make docs`)."""
    from archami.cli import reference, reference_docs, reference_render

    if as_json + as_markdown + as_man > 1:
        raise typer.BadParameter("give one of --json, --markdown and --man")
    rows = reference.settings()
    if as_json:
        print(json.dumps(reference.as_json(rows), indent=2))
    elif as_markdown:
        print(reference_render.markdown(rows), end="")
    elif as_man:
        print(reference_docs.man_text(), end="")
    else:
        console.print(reference_render.terminal(rows, console.width))
