"""A release that is not whole: skipped and failed variants in the record, the table, the page and its
Markdown twin; the pipeline skipping what cannot be published without building it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

from archami.bootability import spec_problem
from archami.config import load_definition
from archami.release.changelog import changelogs
from archami.release.pipeline import ReleaseOptions, open_release, run_release
from archami.release.records import (
    ReleaseRecord,
    UnreleasedVariant,
    VariantInfo,
    load_records,
    save_record,
)
from archami.release.site import build_site
from archami.release.state import load_states, save_state
from archami.release.table import markdown_table, release_table

ROOT = Path(__file__).resolve().parents[2]
RECORDS = Path(__file__).parent / "release_records"
SEED = load_definition(ROOT / "examples" / "arch-seed-columns.toml")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def partial_record() -> ReleaseRecord:
    """The seed's 2013.05.16 release as if its two i686 columns had not made it: one skipped, one failed."""
    current = load_records(RECORDS / "arch")[0]
    kept = [v for v in current.variants if v.variant.architecture != "i686"]
    gpu = SEED.spec("ebs-hvm-gpu-x86_64")
    kept = [v.model_copy(update={"variant": VariantInfo.from_spec(gpu)}) if v.variant.flavour == "gpu" else v
            for v in kept]
    kept = [v.model_copy(update={"boot_test": v.boot_test.model_copy(update={
        "status": "passed", "not_checked": ["GPU"]})}) if v.variant.flavour == "gpu" else v for v in kept]
    lost = {v.variant.id: v.variant for v in current.variants if v.variant.architecture == "i686"}
    not_released = [
        UnreleasedVariant(variant=lost["ebs-paravirtual-i686"], outcome="skipped",
                          reason="i686 paravirtual: Linux 5.9 removed 32-bit Xen PV guests"),
        UnreleasedVariant(variant=lost["instance-store-paravirtual-i686"], outcome="failed", step="publish",
                          reason="S3 said <AccessDenied> & gave up"),
    ]
    return current.model_copy(update={"status": "partial", "variants": kept, "not_released": not_released})


def test_the_table_keeps_the_column_of_a_variant_without_amis() -> None:
    table = release_table(partial_record())
    labels = [c.label for c in table.columns]
    assert labels == ["ebs paravirtual x86_64", "s3 paravirtual x86_64", "ebs paravirtual i686",
                      "s3 paravirtual i686", "ebs hvm x86_64", "ebs hvm gpu x86_64"]  # the seed's order still
    by_label = {c.label: i for i, c in enumerate(table.columns)}
    for _, cells in table.rows:
        assert cells[by_label["ebs paravirtual i686"]].text == "skipped"
        assert cells[by_label["s3 paravirtual i686"]].text == "failed"
        assert cells[by_label["ebs hvm x86_64"]].image is not None
    markdown = markdown_table(table)
    assert "| skipped | failed |" in markdown
    assert "- s3 paravirtual i686: failed at publish: S3 said <AccessDenied> & gave up" in markdown
    assert "- ebs paravirtual i686: skipped: i686 paravirtual: Linux 5.9" in markdown
    assert "Partial release" in markdown


class _Cells(HTMLParser):
    """The class and title of every table cell, the text of the page's list items."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self.items: list[str] = []
        self._cell: list[str] | None = None
        self._item: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td":
            self._cell = [a.get("class") or "", a.get("title") or "", ""]
        if tag == "li":
            self._item = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[2] += data.strip()
        if self._item is not None:
            self._item.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append((self._cell[0], self._cell[1], self._cell[2]))
            self._cell = None
        if tag == "li" and self._item is not None:
            self.items.append(" ".join("".join(self._item).split()))
            self._item = None


def test_the_page_says_which_variants_failed_and_why(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    save_record(releases, partial_record())
    files = build_site(releases, tmp_path / "site", now=NOW)
    html = files.index.read_text()
    page = _Cells()
    page.feed(html)
    assert ("failed", "S3 said <AccessDenied> & gave up", "failed") in page.cells  # the reason, escaped
    assert ("skipped", "i686 paravirtual: Linux 5.9 removed 32-bit Xen PV guests", "skipped") in page.cells
    assert "s3 paravirtual i686: failed at publish: S3 said <AccessDenied> & gave up" in page.items
    assert "&lt;AccessDenied&gt; &amp; gave up" in html  # autoescaped
    assert 'data-status="partial"' in html and "Partial release: 1 variant(s) failed" in html
    # The gpu flavour: its description, its instance type, and a boot that could not test the GPU.
    assert "ebs hvm gpu x86_64: HVM with NVIDIA drivers, for GPU instance types (for g4dn.xlarge and similar)" \
        in page.items
    assert any(text == "g4dn.xlarge" for _, _, text in page.cells)
    assert ("passed untested", "", "booted, GPU not tested") in page.cells
    assert "s3 paravirtual i686: failed at publish" in files.markdown.read_text()


def test_a_variant_that_cannot_be_published_is_skipped_without_building(tmp_path: Path) -> None:
    options = ReleaseOptions(releases_dir=tmp_path / "releases", work_dir=tmp_path / "work",
                             variants=["ebs-paravirtual-x86_64", "ebs-paravirtual-i686"])
    outcome = run_release(SEED, options)
    assert outcome.failed == [] and outcome.record is None  # nothing published: no record to write
    assert {p.variant_id: p.skipped for p in outcome.skipped} == {
        vid: spec_problem(SEED.spec(vid)) for vid in ("ebs-paravirtual-x86_64", "ebs-paravirtual-i686")
    }
    assert not (tmp_path / "work").exists()  # nothing was built
    (state,) = load_states(tmp_path / "releases")
    assert state.status == "complete" and state.attempts == 1


def test_the_news_of_a_partial_release_does_not_call_its_missing_variants_dropped(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    previous = load_records(RECORDS / "arch")[1]
    save_record(releases, previous)
    save_record(releases, partial_record())
    news = " ".join(changelogs(load_records(releases))[0].news)
    assert "Partial release, failed (retried by the next run): s3 paravirtual i686." in news
    assert "Not published, for the reasons under the table: ebs paravirtual i686." in news
    assert "No longer built" not in news


def test_a_partial_release_is_resumed_the_same_day_and_left_partial_by_a_later_one(tmp_path: Path) -> None:
    debian = load_definition(ROOT / "examples" / "debian.toml")
    releases = tmp_path / "releases"

    def options(day: date) -> ReleaseOptions:
        return ReleaseOptions(releases_dir=releases, work_dir=tmp_path / "work", today=day)

    first, _ = open_release(debian, options(date(2026, 11, 25)), print)
    first.status = "failed"
    save_state(releases, first)
    record = load_records(RECORDS / "debian")[0].model_copy(update={"release_id": first.release_id,
                                                                    "status": "partial"})
    save_record(releases, record)
    again, resumed = open_release(debian, options(date(2026, 11, 25)), print)  # the same day: retried
    assert (again.release_id, resumed, again.attempts) == ("2026.11.25", True, 2)
    save_state(releases, again.model_copy(update={"status": "failed"}))
    week, resumed = open_release(debian, options(date(2026, 12, 2)), print)  # a week on: a new release
    assert (week.release_id, resumed, week.attempts) == ("2026.12.02", False, 1)
    assert {s.release_id: s.status for s in load_states(releases)} == {"2026.11.25": "partial"}
    by_id = ReleaseOptions(releases_dir=releases, work_dir=tmp_path / "work", release_id="2026.11.25")
    forced, resumed = open_release(debian, by_id, print)
    assert (forced.release_id, resumed) == ("2026.11.25", True)  # still resumable by its id
