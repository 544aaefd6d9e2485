"""Mirror measurement against real HTTP servers on 127.0.0.1 with different delays and bandwidths, one that
hangs, one that trickles, one that returns errors and one that is stale by status."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archami.cli import app
from archami.errors import ArchamiError
from archami.mirrors import (
    MeasurementReport,
    Mirror,
    MirrorFilter,
    Timeouts,
    filter_mirrors,
    load_status,
    measure,
    parse_status,
    rank,
)

pytestmark = pytest.mark.integration

BODY = bytes(range(256)) * 1024  # 256 KiB, about the size of a real core.db
DB_PATH = "core/os/x86_64/core.db"


@dataclass
class Behaviour:
    delay: float = 0.0  # seconds before the response headers
    rate: int | None = None  # bytes per second of the body; None = as fast as possible
    status: int = 200
    hang: bool = False  # read the request, never answer
    trickle: bool = False  # headers at once, then one byte every 0.2 s
    redirect_to: str | None = None  # answer 301 with this Location
    requests: list[str] = field(default_factory=list)


class MirrorServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                b = server.behaviour
                b.requests.append(self.path)
                if b.hang:
                    server.stop.wait(60)
                    return
                time.sleep(b.delay)
                if b.redirect_to is not None:
                    self.send_response(301)
                    self.send_header("Location", b.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if b.status != 200 or self.path != f"/archlinux/{DB_PATH}":
                    self.send_error(b.status if b.status != 200 else 404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                if b.trickle:
                    for i in range(len(BODY)):
                        if server.stop.wait(0.2):
                            return
                        self.wfile.write(BODY[i : i + 1])
                        self.wfile.flush()
                    return
                chunk = 16 * 1024
                for start in range(0, len(BODY), chunk):
                    self.wfile.write(BODY[start : start + chunk])
                    if b.rate:
                        time.sleep(chunk / b.rate)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/archlinux/"

    def __enter__(self) -> MirrorServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


BEHAVIOURS = {
    "fast": Behaviour(),
    "delayed": Behaviour(delay=0.6),
    "narrow": Behaviour(rate=128 * 1024),  # 256 KiB at 128 KiB/s: ~2 s
    "hanging": Behaviour(hang=True),
    "trickling": Behaviour(trickle=True),
    "erroring": Behaviour(status=500),
    "stale": Behaviour(),
}


@pytest.fixture()
def mirrors(tmp_path: Path) -> Iterator[tuple[dict[str, MirrorServer], Path]]:
    servers = {name: MirrorServer(Behaviour(**{k: v for k, v in vars(b).items() if k != "requests"}))
               for name, b in BEHAVIOURS.items()}
    now = datetime.now(UTC)
    urls = []
    for i, (name, server) in enumerate(servers.items()):
        synced = now - (timedelta(days=3) if name == "stale" else timedelta(minutes=30))
        urls.append({
            "url": server.url, "protocol": "http", "last_sync": synced.isoformat().replace("+00:00", "Z"),
            "completion_pct": 1.0, "delay": 600, "score": float(i), "active": True,
            "country": "Testland", "country_code": "US" if i % 2 else "DE", "ipv4": True, "ipv6": False,
        })
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"cutoff": 86400, "last_check": now.isoformat(), "urls": urls}))
    for server in servers.values():
        server.__enter__()
    try:
        yield servers, status
    finally:
        for server in servers.values():
            server.__exit__()


def test_order_is_right_and_hanging_mirrors_cost_only_their_deadline(
    mirrors: tuple[dict[str, MirrorServer], Path],
) -> None:
    servers, status = mirrors
    candidates = filter_mirrors(parse_status(status.read_text()), MirrorFilter(protocols=("http",)))
    assert servers["stale"].url not in {m.url for m in candidates}
    deadline = 4.0
    started = time.monotonic()
    results = measure(candidates, path=DB_PATH, timeouts=Timeouts(connect=1.0, deadline=deadline), concurrency=6)
    elapsed = time.monotonic() - started

    by_url = {m.url: m for m in results}
    assert [m.url for m in rank(results)] == [servers[n].url for n in ("fast", "delayed", "narrow")]
    assert all(by_url[servers[n].url].size == len(BODY) for n in ("fast", "delayed", "narrow"))
    for name in ("hanging", "trickling"):
        measured = by_url[servers[name].url]
        assert not measured.ok
        assert "deadline" in measured.error or "timed out" in measured.error
        assert measured.seconds is not None and measured.seconds < deadline + 0.5
    assert "HTTP 500" in by_url[servers["erroring"].url].error
    # All six in parallel: the run takes one deadline, not the sum of the slow ones.
    assert elapsed < deadline + 2.0
    assert servers["stale"].behaviour.requests == []


def test_status_document_can_come_from_a_url(mirrors: tuple[dict[str, MirrorServer], Path]) -> None:
    servers, status = mirrors
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(status.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{status.name}"
        assert [m.url for m in load_status(url)] == [s.url for s in servers.values()]
        with pytest.raises(ArchamiError, match="cannot fetch the mirror status"):
            load_status(url + ".missing")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_concurrency_bounds_requests_in_flight(mirrors: tuple[dict[str, MirrorServer], Path]) -> None:
    servers, status = mirrors
    candidates = filter_mirrors(parse_status(status.read_text()), MirrorFilter(protocols=("http",)))
    hanging = [m for m in candidates if m.url in (servers["hanging"].url, servers["trickling"].url)]
    # One worker, two mirrors that each use the whole deadline: they are measured one after the other.
    started = time.monotonic()
    measure(hanging, path=DB_PATH, timeouts=Timeouts(connect=1.0, deadline=1.0), concurrency=1)
    assert 2.0 <= time.monotonic() - started < 3.5


def test_rank_and_regions_commands_write_lists_and_measurements(
    mirrors: tuple[dict[str, MirrorServer], Path], tmp_path: Path,
) -> None:
    servers, status = mirrors
    runner = CliRunner()
    out, report = tmp_path / "mirrorlist", tmp_path / "m" / "us-east-1.json"
    result = runner.invoke(app, [
        "mirrors", "rank", "--status", str(status), "--protocol", "http", "--timeout", "3",
        "--connect-timeout", "1", "--out", str(out), "--measurements", str(report), "--region", "us-east-1",
        "--limit", "2", "--json",
    ])
    assert result.exit_code == 0, result.output
    servers_in_list = [line.split(" = ")[1] for line in out.read_text().splitlines() if line.startswith("Server")]
    assert servers_in_list == [f"{servers[n].url}$repo/os/$arch" for n in ("fast", "delayed")]
    printed = json.loads(result.stdout[result.stdout.index("{"):])
    assert [r["url"] for r in printed["ranked"]][:2] == [servers["fast"].url, servers["delayed"].url]
    assert MeasurementReport.read(report).region == "us-east-1"

    lists = tmp_path / "lists"
    result = runner.invoke(app, [
        "mirrors", "regions", "--status", str(status), "--protocol", "http", str(report.parent),
        "--out", str(lists), "--region", "us-east-1", "--region", "eu-central-1", "--region", "sa-east-1", "--json",
    ])
    assert result.exit_code == 0, result.output
    rows = {r["region"]: r for r in json.loads(result.stdout[result.stdout.index("{"):])["lists"]}
    assert rows["us-east-1"]["source"] == "measured"
    assert rows["eu-central-1"]["source"] == "geography" and "no measurements" in rows["eu-central-1"]["note"]
    assert rows["sa-east-1"]["source"] == "global" and "no mirror in BR" in rows["sa-east-1"]["note"]
    assert sorted(p.name for p in lists.iterdir()) == [
        "eu-central-1.mirrorlist", "global.mirrorlist", "sa-east-1.mirrorlist", "us-east-1.mirrorlist",
    ]
    assert "no measurements" in (lists / "eu-central-1.mirrorlist").read_text()


def test_redirects_are_followed_a_few_times_only() -> None:
    with MirrorServer(Behaviour()) as target, MirrorServer(Behaviour()) as moved, \
            MirrorServer(Behaviour()) as looping:
        moved.behaviour.redirect_to = target.url + DB_PATH
        looping.behaviour.redirect_to = f"/archlinux/{DB_PATH}"  # relative, to itself
        mirrors = [Mirror(moved.url, "http"), Mirror(looping.url, "http")]
        first, second = measure(mirrors, path=DB_PATH, timeouts=Timeouts(connect=1.0, deadline=5.0))
    assert first.ok and first.size == len(BODY)
    assert target.behaviour.requests == [f"/archlinux/{DB_PATH}"]
    assert not second.ok and "redirects" in second.error
