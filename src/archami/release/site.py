"""The release site: index.html (Jinja2, autoescaped), releases.json and releases.md, from release records."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from archami import __version__
from archami.errors import ArchamiError
from archami.release.changelog import Changelog, changelogs
from archami.release.records import ReleaseRecord, published_records
from archami.release.sboms import site_sboms
from archami.release.table import ReleaseTable, markdown_table, release_table

INDEX_NAME = "index.html"
JSON_NAME = "releases.json"
MARKDOWN_NAME = "releases.md"
PRUNE_LOG_NAME = "prune-log.json"  # release/prune_log.py writes it beside the records


@dataclass(frozen=True)
class SiteFiles:
    out_dir: Path
    index: Path
    json: Path
    markdown: Path
    release_ids: list[str]  # newest first


@dataclass(frozen=True)
class RenderedRelease:
    record: ReleaseRecord
    table: ReleaseTable
    markdown: str


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("archami.release", "templates"),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),  # HTML escaped; Markdown is not HTML
        undefined=StrictUndefined,  # a typo in a template fails the build instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def releases_json(records: list[ReleaseRecord], logs: list[Changelog], generated_at: str) -> dict[str, object]:
    """The machine-readable twin of the page: every record, a flat AMI list for scripts, and the news."""
    amis = [
        {"release": r.release_id, "variant": v.variant.id, "region": region, "ami_id": image.ami_id,
         "name": v.ami_name}
        for r in records for v in r.ordered_variants() for region, image in sorted(v.regions.items())
    ]
    return {
        "generated_at": generated_at,
        "current": records[0].release_id if records else None,
        "amis": amis,
        "news": [log.model_dump(mode="json") for log in logs],
        "releases": [r.model_dump(mode="json") for r in records],
    }


def markdown_page(title: str, releases: list[RenderedRelease], logs: list[Changelog]) -> str:
    """The Markdown twin of index.html: the same tables and news, for a README or a wiki."""
    parts = [f"# {title}\n"]
    for i, item in enumerate(releases):
        parts.append(f"## Release {item.record.release_id}{' (current)' if i == 0 else ''}\n")
        parts.append(item.markdown)
        summary = item.record.verification
        if summary is not None and summary.unverified:
            parts.append(f"Verified at {summary.endpoint} (not AWS); accepted as unverified: "
                         f"{', '.join(summary.unverified_attributes)}.\n")
    if logs:
        parts.append("## Recent changes and news\n")
        parts.append("".join(f"- **{log.date}** (release {log.release_id}): {' '.join(log.news)}\n" for log in logs))
    return "\n".join(parts)


def _family(records: list[ReleaseRecord], name: str | None, releases_dir: Path) -> list[ReleaseRecord]:
    names = sorted({r.definition_name for r in records})
    if name is not None:
        chosen = [r for r in records if r.definition_name == name]
        if not chosen:
            raise ArchamiError(f"{releases_dir}: no releases of {name!r} (found: {', '.join(names) or 'none'})")
        return chosen
    if len(names) > 1:
        raise ArchamiError(f"{releases_dir} holds releases of {', '.join(names)}: choose one with --name")
    return records


DEFAULT_HISTORY = 5


def build_site(
    releases_dir: Path, out_dir: Path, *, name: str | None = None, title: str | None = None,
    now: datetime | None = None, history: int = DEFAULT_HISTORY,
) -> SiteFiles:
    """Render the site for one image family's releases (all records in the directory unless `name`).

    index.html and releases.md show the current release and `history` older ones (a year of weekly
    releases in full made a 2.3 MB page: bench/release_site.py); releases.json and releases/<id>.json keep
    every release.
    """
    records = _family(published_records(releases_dir), name, releases_dir)  # held-back releases stay off
    out_dir.mkdir(parents=True, exist_ok=True)
    logs = changelogs(records)
    generated_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rendered = []
    shown = records[: history + 1]
    for record in shown:
        table = release_table(record)
        rendered.append(RenderedRelease(record, table, markdown_table(table)))
    newest = records[0] if records else None
    context = {
        "title": title or (newest.description if newest and newest.description else "archami releases"),
        "description": f"{newest.definition_name} AMIs for Amazon EC2, released by archami." if newest else "",
        "current": rendered[0] if rendered else None,
        "older": rendered[1:],
        "releases": rendered,
        "logs": logs[: len(shown)],
        "hidden": len(records) - len(shown),
        "version": __version__,
        "generated_at": generated_at,
        "sboms": site_sboms(releases_dir, out_dir),
    }
    env = _environment()
    files = SiteFiles(out_dir, out_dir / INDEX_NAME, out_dir / JSON_NAME, out_dir / MARKDOWN_NAME,
                      [r.release_id for r in records])
    _write(files.index, env.get_template("index.html.j2").render(context))
    _write(files.markdown, markdown_page(str(context["title"]), rendered, logs[: len(shown)]))
    _write(files.json, json.dumps(releases_json(records, logs, generated_at), indent=2) + "\n")
    # Each record is also served as it is, so `releases/<id>.json` links stay stable.
    copies = out_dir / "releases"
    copies.mkdir(exist_ok=True)
    for record in records:
        shutil.copyfile(releases_dir / f"{record.release_id}.json", copies / f"{record.release_id}.json")
    if (releases_dir / PRUNE_LOG_NAME).is_file():  # what `archami prune` removed, run by run
        shutil.copyfile(releases_dir / PRUNE_LOG_NAME, out_dir / PRUNE_LOG_NAME)
    return files


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
