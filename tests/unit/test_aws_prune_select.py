"""Which releases prune removes (pure selection; the AWS side is in the integration tests)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archami.aws.published import PruneAction, select_old
from archami.errors import ArchamiError


def ami(release: str, created: str, region: str = "us-east-1", variant: str = "v") -> PruneAction:
    return PruneAction(
        region=region,
        family="debian",
        variant_id=variant,
        release_id=release,
        ami_id=f"ami-{variant}-{release}-{region}",
        name=release,
        created=created,
    )


PUBLISHED = [
    ami("2026.11.01", "2026-11-01T10:00:00.000Z"),
    ami("2026.11.01", "2026-11-01T10:05:00.000Z", "eu-west-1"),
    ami("2026.11.08", "2026-11-08T10:00:00.000Z"),
    ami("2026.11.25", "2026-11-25T10:00:00.000Z"),
    ami("2026.11.01", "2026-11-01T10:00:00.000Z", variant="w"),
]


def test_keep_newest_per_variant() -> None:
    doomed = select_old(PUBLISHED, keep=2)
    assert {(a.variant_id, a.release_id, a.region) for a in doomed} == {
        ("v", "2026.11.01", "us-east-1"),
        ("v", "2026.11.01", "eu-west-1"),
    }
    assert [a.release_id for a in select_old(PUBLISHED, keep=1)] == ["2026.11.01", "2026.11.01", "2026.11.08"]


def test_older_than() -> None:
    doomed = select_old(PUBLISHED, older_than=datetime(2026, 11, 8, tzinfo=UTC))
    assert {a.ami_id for a in doomed} == {
        "ami-v-2026.11.01-us-east-1",
        "ami-v-2026.11.01-eu-west-1",
        "ami-w-2026.11.01-us-east-1",
    }


@pytest.mark.parametrize("kwargs", [{}, {"keep": 0}, {"keep": 1, "older_than": datetime(2026, 1, 1, tzinfo=UTC)}])
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ArchamiError):
        select_old(PUBLISHED, **kwargs)  # type: ignore[arg-type]
