"""`archami build --check-reproducible`: two builds side by side, and where they differ."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from archami.cli.app import console, err_console
from archami.cli.output import progress_console
from archami.config.load import LoadedDefinition
from archami.config.variant import Variant
from archami.image.reprocheck import ReproducibilityReport, check_reproducible


def _as_dict(report: ReproducibilityReport) -> dict[str, object]:
    difference = report.difference
    return {
        "variant": report.first.manifest.variant_id,
        "reproducible": report.reproducible,
        "builds": [{"image": str(b.image), "sha256": b.manifest.image_sha256, "seconds": b.manifest.build_seconds,
                    "built_at": b.manifest.built_at, "root_cache_hit": b.manifest.root_cache_hit}
                   for b in (report.first, report.second)],
        "source_date_epoch": report.first.manifest.source_date_epoch,
        "difference": None if difference is None else {
            "region": difference.region, "offset": difference.offset, "summary": difference.summary(),
            "files": [{"path": f.path, "detail": f.detail} for f in difference.files],
            "detail": difference.detail, "diffoscope": difference.diffoscope,
        },
    }


def report_reproducibility(
    loaded: LoadedDefinition, variants: list[Variant], out: Path, cache: Path | None, as_json: bool
) -> None:
    reports = []
    for variant in variants:
        with progress_console(as_json).status(f"[bold]{variant.id}[/]: building twice", spinner="dots"):
            reports.append(check_reproducible(loaded, variant, out, cache))
    if as_json:
        print(json.dumps([_as_dict(r) for r in reports], indent=2))
    else:
        table = Table(title="reproducibility: two builds of each variant")
        for column in ("variant", "build", "sha256 of image.raw", "seconds", "built at"):
            table.add_column(column)
        for report in reports:
            for label, build in (("first", report.first), ("second", report.second)):
                m = build.manifest
                table.add_row(m.variant_id, label, m.image_sha256, f"{m.build_seconds:.1f}", m.built_at)
        console.print(table)
        for report in reports:
            if report.difference is None:
                console.print(f"[green]{report.first.manifest.variant_id}: reproducible[/] "
                              f"(SOURCE_DATE_EPOCH={report.first.manifest.source_date_epoch})")
            else:
                err_console.print(f"[red]{report.first.manifest.variant_id}: NOT reproducible[/]: "
                                  f"{report.difference.summary()}", highlight=False)
                if report.difference.diffoscope:
                    err_console.print(report.difference.diffoscope, highlight=False, markup=False)
                err_console.print(f"second build kept in {report.second.out_dir}")
    if not all(r.reproducible for r in reports):
        raise typer.Exit(1)
