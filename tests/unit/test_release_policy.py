"""The lifecycle policy `archami prune` follows (pure planning): examples, then properties over any history
(hypothesis): the current and protected releases are never removed, at least N are kept, releases are kept or
removed whole, the old ones kept are deprecated and the current never is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archami.errors import ArchamiError
from archami.release.policy import DEPRECATE_LEAD, PrunePolicy, PublishedAmi, TaggedSnapshot, plan_prune

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REGIONS = ("us-east-1", "eu-west-1")


def ami(release: str, days_ago: float, region: str = "us-east-1", variant: str = "v", **kw: object) -> PublishedAmi:
    return PublishedAmi(region=region, family="debian", variant_id=variant, release_id=release,
                        ami_id=f"ami-{variant}-{release}-{region}", created=NOW - timedelta(days=days_ago),
                        **kw)  # type: ignore[arg-type]


WEEKLY = [ami(f"2026.11.{d:02d}", 30 - d, region) for d in (1, 8, 15, 22, 29) for region in REGIONS]


def fate(plan_amis: list[PublishedAmi], **policy: object) -> dict[str, str]:
    plan = plan_prune(plan_amis, PrunePolicy(**policy), NOW)  # type: ignore[arg-type]
    return {d.release_id: d.action for d in plan.decisions}


def test_keep_newest_with_no_window() -> None:
    assert fate(WEEKLY, keep=2, protect_previous=None) == {
        "2026.11.29": "keep", "2026.11.22": "keep", "2026.11.15": "remove", "2026.11.08": "remove",
        "2026.11.01": "remove"}


def test_the_protection_window_keeps_current_and_previous_n() -> None:
    kept = fate(WEEKLY, keep=1, protect_previous=2)
    assert [r for r, a in kept.items() if a == "keep"] == ["2026.11.29", "2026.11.22", "2026.11.15"]


def test_keep_days_and_the_current_from_the_records() -> None:
    since = NOW - timedelta(days=10)  # 11.22 and 11.29 are newer
    assert [r for r, a in fate(WEEKLY, keep_since=since, protect_previous=None).items() if a == "keep"] == [
        "2026.11.29", "2026.11.22"]
    # The records' current release (a newer one in AWS was held back by its verification) stays too.
    kept = fate(WEEKLY, keep_since=since, protect_previous=None, current=frozenset({"2026.11.08"}))
    assert kept["2026.11.08"] == "keep" and kept["2026.11.15"] == "remove"


def test_protected_in_ec2_is_kept_and_released_out_of_the_window() -> None:
    amis = [*WEEKLY[:-1], ami("2026.11.29", 1, REGIONS[1])]
    amis[0] = ami("2026.11.01", 29, REGIONS[0], protected=True)  # one region of the oldest
    plan = plan_prune(amis, PrunePolicy(keep=1, protect_previous=1), NOW)
    oldest = next(d for d in plan.decisions if d.release_id == "2026.11.01")
    assert oldest.action == "keep" and oldest.reasons == ("protected in EC2",)
    assert [a.ami_id for a in oldest.unprotect] == [amis[0].ami_id]  # released now, removable next time
    assert {a.region for a in oldest.amis} == set(REGIONS)  # kept whole


def test_old_releases_kept_are_deprecated_now_unless_already_sooner() -> None:
    amis = [ami("2026.11.29", 2), ami("2026.11.22", 9), ami("2026.11.15", 16, deprecation=NOW - timedelta(days=1)),
            ami("2026.11.08", 23, deprecation=NOW + timedelta(days=300))]
    plan = plan_prune(amis, PrunePolicy(keep=4, keep_since=NOW - timedelta(days=10), protect_previous=None), NOW)
    assert [a.release_id for a in plan.to_deprecate] == ["2026.11.08"]  # 11.22 is recent, 11.15 deprecated already
    assert plan.deprecate_at == (NOW + DEPRECATE_LEAD).replace(second=0)


@pytest.mark.parametrize("policy", [{}, {"keep": 0}, {"keep": 1, "protect_previous": -1}])
def test_a_policy_must_be_given_and_sane(policy: dict[str, object]) -> None:
    with pytest.raises(ArchamiError):
        plan_prune(WEEKLY, PrunePolicy(**policy), NOW)  # type: ignore[arg-type]


histories = st.lists(
    st.tuples(st.integers(0, 15), st.sampled_from(REGIONS), st.sampled_from(("v", "w")),
              st.floats(0, 800), st.sampled_from((None, False, True))),
    max_size=40,
)
policies = st.builds(
    PrunePolicy,
    keep=st.one_of(st.none(), st.integers(1, 6)),
    keep_since=st.one_of(st.none(), st.integers(0, 900).map(lambda d: NOW - timedelta(days=d))),
    protect_previous=st.one_of(st.none(), st.integers(0, 4)),
    current=st.frozensets(st.integers(0, 15).map(lambda n: f"r{n:02d}"), max_size=2),
).filter(lambda p: p.keep is not None or p.keep_since is not None)


@settings(max_examples=300, deadline=None)
@given(histories, policies)
def test_properties_of_every_plan(history: list[tuple[int, str, str, float, bool | None]], policy: PrunePolicy) -> None:
    amis = {}
    for n, region, variant, age, protected in history:
        # One creation time per release and variant (a copy is minutes later), whatever the region.
        found = ami(f"r{n:02d}", 900 - n * 50 + age / 1000, region, variant, protected=protected)
        amis[(found.release_id, region, variant)] = found
    plan = plan_prune(list(amis.values()), policy, NOW)
    removed = {a.ami_id for a in plan.to_remove}
    assert len(plan.decisions) == len({(a.variant_id, a.release_id) for a in amis.values()})
    for variant in ("v", "w"):
        decisions = [d for d in plan.decisions if d.variant_id == variant]  # newest first
        if not decisions:
            continue
        assert decisions[0].action == "keep" and "current" in decisions[0].reasons  # never the current
        kept = [d for d in decisions if d.action == "keep"]
        assert len(kept) >= min(policy.keep or 1, len(decisions))  # at least N
        if policy.keep is not None:
            assert all(d.action == "keep" for d in decisions[: policy.keep])
        for index, d in enumerate(decisions):
            if policy.protect_previous is not None and index <= policy.protect_previous:
                assert d.action == "keep"  # the protection window
            if d.release_id in policy.current:
                assert d.action == "keep"
            if policy.keep_since is not None and d.created >= policy.keep_since:
                assert d.action == "keep"
            if d.action == "remove":
                assert not d.reasons and not d.deprecate and not d.unprotect
            else:
                assert not ({a.ami_id for a in d.amis} & removed)  # a release is kept whole
                assert "current" not in d.reasons or not d.deprecate  # the current is never deprecated
    assert not any(a.protected for a in plan.to_remove)  # never a protected AMI
    assert all(a.protected for a in plan.to_unprotect)
    assert set(plan.to_deprecate).isdisjoint(plan.to_remove)


def test_orphan_snapshots_are_old_ones_of_no_kept_release_and_held_by_no_ami() -> None:
    amis = [ami("2026.11.29", 2, snapshot_ids=("snap-new",)), ami("2026.11.22", 9, snapshot_ids=("snap-kept",)),
            ami("2026.11.15", 16, snapshot_ids=("snap-gone",))]

    def snap(release: str, snapshot: str, hours_ago: float, region: str = "us-east-1") -> TaggedSnapshot:
        return TaggedSnapshot(region, "debian", "v", release, snapshot, NOW - timedelta(hours=hours_ago))

    snapshots = [snap("2026.11.22", "snap-kept", 200), snap("2026.11.22", "snap-kept-source", 200),  # kept release
                 snap("2026.11.15", "snap-gone", 300),  # removed with its AMI (same region)
                 snap("2026.11.15", "snap-gone-copy", 300, "eu-west-1"),  # removed release, no AMI in that region
                 snap("2026.11.01", "snap-left", 700),  # its AMI was deregistered earlier: left behind
                 snap("2026.12.01", "snap-uploading", 1)]  # a publish in progress: too young
    plan = plan_prune(amis, PrunePolicy(keep=2, protect_previous=None), NOW, snapshots)
    assert [s.snapshot_id for s in plan.orphans] == ["snap-gone-copy", "snap-left"]
