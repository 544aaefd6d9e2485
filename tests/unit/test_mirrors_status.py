"""Mirror status parsing and filtering, and ranking: pure, no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archami.errors import ArchamiError
from archami.mirrors import Measurement, MirrorFilter, filter_mirrors, load_status, parse_status, rank
from archami.mirrors.status import by_status_score

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _entry(url: str, **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "url": url, "protocol": url.split(":")[0], "last_sync": "2026-11-25T11:00:00Z", "completion_pct": 1.0,
        "delay": 1200, "duration_avg": 0.5, "duration_stddev": 0.1, "score": 1.5, "active": True,
        "country": "Germany", "country_code": "DE", "isos": True, "ipv4": True, "ipv6": True, "details": "x",
    }
    entry.update(overrides)
    return entry


def _status(*entries: dict[str, object]) -> str:
    return json.dumps({"cutoff": 86400, "last_check": "2026-11-25T11:50:00.000Z", "num_checks": 24,
                       "check_frequency": 3600, "urls": list(entries), "version": 3})


def test_parse_reads_reflectors_fields() -> None:
    (m,) = parse_status(_status(_entry("https://m.example/archlinux", last_sync=None, score=None, delay=None)))
    assert m.url == "https://m.example/archlinux/"  # normalised: Server lines append $repo/os/$arch
    assert m.server == "https://m.example/archlinux/$repo/os/$arch"
    assert m.file_url("/core/os/x86_64/core.db") == "https://m.example/archlinux/core/os/x86_64/core.db"
    assert (m.last_sync, m.score, m.delay, m.country_code, m.ipv6) == (None, None, None, "DE", True)
    (m,) = parse_status(_status(_entry("https://m.example/")))
    assert m.last_sync == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["not json", "{}", '{"urls": [{"protocol": "https"}]}', '{"urls": 3}'])
def test_bad_status_documents_are_one_clear_error(text: str) -> None:
    with pytest.raises(ArchamiError, match="not a mirror status document"):
        parse_status(text, "status.json")


def test_load_status_from_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArchamiError, match=r"nope\.json: cannot read the mirror status: No such file"):
        load_status(str(tmp_path / "nope.json"))
    (tmp_path / "s.json").write_text(_status(_entry("https://a.example/")))
    assert [m.url for m in load_status(str(tmp_path / "s.json"))] == ["https://a.example/"]


def test_filter_by_age_completion_protocol_country_and_activity() -> None:
    mirrors = parse_status(_status(
        _entry("https://ok.example/"),
        _entry("https://stale.example/", last_sync="2026-11-22T12:00:00Z"),
        _entry("https://never-synced.example/", last_sync=None),
        _entry("https://partial.example/", completion_pct=0.9),
        _entry("http://plain.example/"),
        _entry("rsync://rsync.example/"),
        _entry("https://us.example/", country="United States", country_code="US"),
        _entry("https://inactive.example/", active=False),
        _entry("https://slow-to-sync.example/", delay=7200),
    ))
    default = {m.url for m in filter_mirrors(mirrors, MirrorFilter(), now=NOW)}
    assert default == {"https://ok.example/", "https://us.example/", "https://slow-to-sync.example/"}
    germany = filter_mirrors(mirrors, MirrorFilter(countries=("de",), max_delay=timedelta(hours=1)), now=NOW)
    assert [m.url for m in germany] == ["https://ok.example/"]
    by_name = filter_mirrors(mirrors, MirrorFilter(countries=("United States",)), now=NOW)
    assert [m.url for m in by_name] == ["https://us.example/"]
    loose_rules = MirrorFilter(max_age=None, min_completion=0.0, protocols=("http", "https"))
    loose = filter_mirrors(mirrors, loose_rules, now=NOW)
    assert {"https://stale.example/", "https://partial.example/", "http://plain.example/"} <= {m.url for m in loose}
    assert "https://inactive.example/" not in {m.url for m in loose}


def test_status_score_order_puts_unscored_last() -> None:
    mirrors = parse_status(_status(
        _entry("https://b.example/", score=2.0), _entry("https://none.example/", score=None),
        _entry("https://a.example/", score=0.7),
    ))
    assert [m.url for m in by_status_score(mirrors)] == [
        "https://a.example/", "https://b.example/", "https://none.example/",
    ]


def test_rank_orders_by_download_time_and_drops_failures() -> None:
    results = [
        Measurement("https://slow/", ok=True, latency=0.1, seconds=2.0, size=10),
        Measurement("https://down/", ok=False, seconds=0.01, error="HTTP 500"),
        Measurement("https://fast/", ok=True, latency=0.05, seconds=0.3, size=10),
        Measurement("https://tie/", ok=True, latency=0.01, seconds=0.3, size=10),
    ]
    assert [m.url for m in rank(results)] == ["https://tie/", "https://fast/", "https://slow/"]
    assert results[2].rate == pytest.approx(10 / 0.3)
    assert results[1].rate is None
