from datetime import date

import pytest

from archami.errors import ArchamiError
from archami.release.ids import ReleaseId, is_release_id, next_release_id, sort_key


def test_first_release_of_a_day_has_no_suffix() -> None:
    assert next_release_id(date(2026, 11, 25), []) == "2026.11.25"
    assert next_release_id(date(2026, 11, 25), ["2026.11.24", "2026.11.24.1"]) == "2026.11.25"


def test_later_releases_the_same_day_count_up_after_the_highest_taken() -> None:
    assert next_release_id(date(2026, 11, 25), ["2026.11.25"]) == "2026.11.25.1"
    assert next_release_id(date(2026, 11, 25), ["2026.11.25", "2026.11.25.1"]) == "2026.11.25.2"
    # A gap is not reused: ids only grow, so an AMI name is never given twice.
    assert next_release_id(date(2026, 11, 25), ["2026.11.25", "2026.11.25.3"]) == "2026.11.25.4"


def test_ids_sort_by_date_then_number_not_as_text() -> None:
    ids = ["2026.11.25.10", "2026.11.25", "2026.11.25.9", "2026.01.02", "2027.01.01"]
    assert sorted(ids, key=sort_key) == ["2026.01.02", "2026.11.25", "2026.11.25.9", "2026.11.25.10", "2027.01.01"]


@pytest.mark.parametrize("text", ["2026.11.25.0", "2026.13.01", "2026.02.30", "26.11.25", "2026.11.25.x", "latest"])
def test_bad_ids_are_refused(text: str) -> None:
    assert not is_release_id(text)
    with pytest.raises(ArchamiError):
        ReleaseId.parse(text)


def test_round_trip() -> None:
    assert str(ReleaseId.parse("2013.05.16")) == "2013.05.16"
    assert str(ReleaseId.parse("2013.05.16.2")) == "2013.05.16.2"
    assert next_release_id(date(2026, 11, 25), ["not-an-id", "2026.11.25"]) == "2026.11.25.1"
