import json
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from archami.errors import ArchamiError
from archami.release.records import load_records, save_record
from archami.release.site import build_site

RECORDS = Path(__file__).parent / "release_records"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: dict[str, str] = {}
        self._href: str | None = None
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.hrefs[data.strip()] = self._href

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None


def test_site_files_and_links(tmp_path: Path) -> None:
    files = build_site(RECORDS / "arch", tmp_path, now=NOW)
    assert files.release_ids == ["2013.05.16", "2013.05.01"]
    html = files.index.read_text()
    parser = _Links()
    parser.feed(html)
    for record in load_records(RECORDS / "arch"):
        for v in record.variants:
            for region, image in v.regions.items():
                assert parser.hrefs[image.ami_id] == (
                    f"https://console.aws.amazon.com/ec2/home?region={region}#LaunchInstanceWizard:ami={image.ami_id}"
                )
    assert "Release 2013.05.16" in html and "Release 2013.05.01" in html
    assert html.index("Release 2013.05.16") < html.index("Recent changes and news") < html.index("Older releases")
    assert "This release has Linux 3.8.11 (was 3.7.6)." in html
    assert parser.scripts == 0
    assert (tmp_path / "releases" / "2013.05.16.json").is_file()


def test_releases_json_is_the_pages_twin(tmp_path: Path) -> None:
    files = build_site(RECORDS / "arch", tmp_path, now=NOW)
    data = json.loads(files.json.read_text())
    assert data["current"] == "2013.05.16"
    assert data["generated_at"] == "2026-11-25T12:00:00Z"
    assert [r["release_id"] for r in data["releases"]] == ["2013.05.16", "2013.05.01"]
    current = [a for a in data["amis"] if a["release"] == "2013.05.16"]
    assert len(current) == 6 * 8 - 6 - 1
    assert data["news"][0]["news"][0] == "This release has Linux 3.8.11 (was 3.7.6)."
    md = files.markdown.read_text()
    assert md.count("## Release ") == 2 and "## Release 2013.05.16 (current)" in md
    assert all(a["ami_id"] in md for a in data["amis"])


def test_values_are_escaped(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    (record,) = [r for r in load_records(RECORDS / "debian") if r.release_id == "2026.11.18"]
    evil = record.model_copy(update={"description": "<script>alert(1)</script> & co"})
    save_record(releases, evil)
    html = build_site(releases, tmp_path / "site", now=NOW).index.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_mixed_families_need_a_name(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    releases.mkdir()
    for family in ("arch", "debian"):
        for path in (RECORDS / family).glob("*.json"):
            shutil.copy(path, releases / path.name)
    with pytest.raises(ArchamiError, match="choose one with --name"):
        build_site(releases, tmp_path / "site")
    files = build_site(releases, tmp_path / "site", name="debian", now=NOW)
    assert files.release_ids == ["2026.11.25.1", "2026.11.25", "2026.11.18"]
    with pytest.raises(ArchamiError, match="no releases of 'fedora'"):
        build_site(releases, tmp_path / "site", name="fedora")


def test_empty_releases_directory_renders_a_page(tmp_path: Path) -> None:
    (tmp_path / "releases").mkdir()
    files = build_site(tmp_path / "releases", tmp_path / "site", now=NOW)
    assert "No releases yet." in files.index.read_text()
    assert json.loads(files.json.read_text())["current"] is None


def test_history_limits_the_page_not_the_json(tmp_path: Path) -> None:
    files = build_site(RECORDS / "debian", tmp_path, now=NOW, history=1)
    html = files.index.read_text()
    assert "Release 2026.11.25.1" in html and "Release 2026.11.25<" in html
    assert "Release 2026.11.18" not in html and "1 earlier release(s)" in html
    assert "## Release 2026.11.18" not in files.markdown.read_text()
    data = json.loads(files.json.read_text())
    assert [r["release_id"] for r in data["releases"]] == ["2026.11.25.1", "2026.11.25", "2026.11.18"]
    assert len(data["news"]) == 3
