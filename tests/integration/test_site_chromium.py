"""The release site opened in headless Chromium (Debian's `chromium`): DOM checked, screenshots taken."""

import json
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from archami.release.browser import PHONE_WINDOW, dump_dom, screenshot
from archami.release.records import load_records
from archami.release.site import build_site

pytestmark = pytest.mark.integration
RECORDS = Path(__file__).resolve().parents[1] / "unit" / "release_records"


class _Dom(HTMLParser):
    """Collects headings, region rows, links (text -> href) and the news section's text."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.region_rows: list[str] = []
        self.links: dict[str, str] = {}
        self.news = ""
        self._tag: list[str] = []
        self._href: str | None = None
        self._in_news = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._tag.append(tag)
        if tag == "tr" and a.get("data-region"):
            self.region_rows.append(str(a["data-region"]))
        if tag == "a":
            self._href = a.get("href")
        if tag == "section" and a.get("id") == "news":
            self._in_news = len(self._tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None
        if self._in_news == len(self._tag):
            self._in_news = 0
        if self._tag:
            self._tag.pop()

    def handle_data(self, data: str) -> None:
        text = data.strip()
        if not text:
            return
        if self._tag and self._tag[-1] in ("h1", "h2", "h3"):
            self.headings.append(text)
        if self._href is not None:
            self.links[text] = self._href
        if self._in_news:
            self.news += text + " "


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build_site(RECORDS / "arch", out)
    return out


def test_dom_has_heading_every_region_every_ami_linked_and_news(site: Path) -> None:
    dom = _Dom()
    dom.feed(dump_dom(site / "index.html"))
    assert "Release 2013.05.16" in dom.headings and "Release 2013.05.01" in dom.headings
    assert dom.headings.index("Release 2013.05.16") < dom.headings.index("Release 2013.05.01")
    current, previous = load_records(RECORDS / "arch")
    regions = ["us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2",
               "ap-northeast-1", "sa-east-1"]
    assert dom.region_rows == regions + regions  # current table, then the older release's
    linked = 0
    for record in (current, previous):
        for v in record.variants:
            for region, image in v.regions.items():
                assert dom.links[image.ami_id] == (
                    f"https://console.aws.amazon.com/ec2/home?region={region}#LaunchInstanceWizard:ami={image.ami_id}"
                )
                linked += 1
    assert linked == (6 * 8 - 7) + 5 * 8
    assert "This release has Linux 3.8.11 (was 3.7.6)." in dom.news
    assert "New: ebs hvm gpu x86_64." in dom.news
    assert dom.links["releases.json"] == "releases.json" and dom.links["releases.md"] == "releases.md"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshots_desktop_and_phone(site: Path) -> None:
    desktop = screenshot(site / "index.html", site / "screenshot.png", (1280, 1000))
    phone = screenshot(site / "index.html", site / "screenshot-phone.png", PHONE_WINDOW)
    assert _png_size(desktop) == (1280, 1000)
    assert _png_size(phone) == PHONE_WINDOW
    # A rendered page is far from a blank PNG (a blank 1280x1000 one compresses to a few KB).
    assert desktop.stat().st_size > 20_000


_PROBE = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="index.html" style="width:{width}px;height:900px;border:0"></iframe>
<pre id="out">pending</pre>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const d = document.getElementById('f').contentDocument;
  const boxes = [...d.querySelectorAll('.scroll')];
  document.getElementById('out').textContent = JSON.stringify({{
    page: d.documentElement.scrollWidth, view: d.documentElement.clientWidth,
    boxes: boxes.map(b => [b.clientWidth, b.scrollWidth])}});
}});
</script></body></html>"""


def test_reads_on_a_phone_tables_scroll_not_the_page(site: Path) -> None:
    width = PHONE_WINDOW[0]
    probe = site / "phone-probe.html"
    probe.write_text(_PROBE.format(width=width))
    # The probe measures the page inside a phone-wide frame (file:// frames need file access allowed).
    dom = dump_dom(probe, flags=["--allow-file-access-from-files", "--virtual-time-budget=5000"])
    measured = json.loads(dom.split('<pre id="out">', 1)[1].split("</pre>", 1)[0])
    assert measured["page"] <= measured["view"] <= width  # nothing sticks out of the screen
    assert measured["boxes"] and all(client <= width for client, _ in measured["boxes"])
    assert any(scroll > client for client, scroll in measured["boxes"])  # wide tables scroll sideways
