"""`archami build`: the build stage (`archami doctor build` lists the host tools it needs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from archami.artifacts import BuildResult
from archami.bootability import manifest_problem, spec_problem
from archami.cli.app import app, console, err_console
from archami.cli.args import output_dir
from archami.cli.output import progress_console
from archami.config import load_definition, select
from archami.config.matrix import MatrixError
from archami.errors import ConfigError
from archami.image.pipeline import build_variant
from archami.image.steps import EXECUTION_ORDER, ROOT_STAGE, ROOT_SUBSTAGES, execution_order_text


@app.command(epilog=f"Execution order: {execution_order_text()}")
def build(
    file: Annotated[Path, typer.Argument(help="Image definition (TOML).")],
    variant: Annotated[str | None, typer.Option("--variant", "-v", help="Build only this variant id.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (one subdirectory per variant).",
                                      callback=output_dir)] = Path("out"),
    cache: Annotated[Path | None, typer.Option("--cache", help="Cache directory (default /var/cache/archami).",
                                               callback=output_dir)] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Bootstrap afresh, ignoring the root cache.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the BuildResult as JSON (a list when several variants are built).")
    ] = False,
    check_reproducible: Annotated[
        bool, typer.Option("--check-reproducible", help="Build twice; print the first differing file, if any.")
    ] = False,
) -> None:
    """Build raw disk images (image.raw, manifest.json, build.log) for a definition's variants."""
    loaded = load_definition(file)
    try:
        chosen = select(loaded.variants, variant)
    except MatrixError as exc:
        raise ConfigError(str(file), exc.key, str(exc)) from None
    if variant is None:  # all of them: leave out what cannot be released, saying why (one asked for is refused)
        refused = {spec.id: spec_problem(spec) for spec in loaded.specs}
        for vid, reason in refused.items():
            if reason:
                err_console.print(f"[yellow]not building {vid}[/]: {reason}", highlight=False)
        chosen = [v for v in chosen if not refused[v.id]]
    if check_reproducible:
        from archami.cli.repro_output import report_reproducibility

        report_reproducibility(loaded, chosen, out, cache, as_json)
        return
    results: list[BuildResult] = []
    shown = progress_console(as_json)  # with --json, stdout holds only the BuildResult
    for v in chosen:
        with shown.status(f"[bold]{v.id}[/]: starting", spinner="dots") as status:

            def progress(name: str, status: object = status, vid: str = v.id) -> None:
                stage = ROOT_STAGE if name in ROOT_SUBSTAGES else name
                done = EXECUTION_ORDER.index(stage) + 1 if stage in EXECUTION_ORDER else 0
                status.update(f"[bold]{vid}[/]: {name} ({done}/{len(EXECUTION_ORDER)})")  # type: ignore[attr-defined]
                shown.log(f"{vid}: {name}")

            results.append(build_variant(loaded, v, out, cache, refresh_root=refresh, progress=progress))
    if as_json:
        records = [json.loads(r.model_dump_json()) for r in results]
        print(json.dumps(records[0] if variant is not None else records, indent=2))
        return
    table = Table(title=f"{loaded.definition.name}: built {len(results)} variant(s)")
    for column in ("variant", "kernel", "packages", "size", "allocated", "seconds", "root cache", "image"):
        table.add_column(column)
    for r in results:
        m = r.manifest
        table.add_row(
            m.variant_id, m.kernel_version, str(len(m.packages)), f"{m.image_size / 2**30:.1f} GiB",
            f"{m.used_bytes / 2**20:.0f} MiB", f"{m.build_seconds:.1f}", "hit" if m.root_cache_hit else "miss",
            str(r.image),
        )
    console.print(table)
    for r in results:
        problem = manifest_problem(r.manifest)
        if problem:
            err_console.print(f"[yellow]{r.manifest.variant_id} cannot be published[/]: {problem}", highlight=False)

