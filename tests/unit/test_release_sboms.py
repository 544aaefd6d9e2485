"""A release keeps its SBOMs beside its record; the site serves them and links each from its variant."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from archami.image.sbom import SBOM_NAME
from archami.release.records import load_records
from archami.release.sboms import keep_sboms
from archami.release.site import build_site

RECORDS = Path(__file__).parent / "release_records" / "debian"


class _SbomLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("class") == "sbom" and values.get("href"):
            self.links.append(str(values["href"]))


def test_sboms_are_kept_served_and_linked(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    shutil.copytree(RECORDS, releases)
    current = load_records(releases)[0]
    builds = {}
    for variant in current.variants:
        build = tmp_path / "builds" / variant.variant.id
        build.mkdir(parents=True)
        (build / SBOM_NAME).write_text(json.dumps({"bomFormat": "CycloneDX", "variant": variant.variant.id}))
        builds[variant.variant.id] = build
    kept = keep_sboms(releases, current.release_id, builds)
    assert len(kept) == len(current.variants)

    site = tmp_path / "site"
    files = build_site(releases, site, now=datetime(2026, 11, 25, tzinfo=UTC))
    parser = _SbomLinks()
    parser.feed(files.index.read_text())
    assert len(parser.links) == len(current.variants)  # older releases kept no SBOM: no link
    for link in parser.links:
        served = json.loads((site / link).read_text())
        assert link.endswith(f"{current.release_id}/{served['variant']}.cdx.json")
