"""The lifecycle policy of published releases, as pure planning: which releases `archami prune` removes,
which of those it keeps it deprecates, and which lose their deregistration protection as they age out.

Per image family and variant, releases are ordered newest first (first creation in any region, then the
release id). A release is kept whole (every region) when any of these holds:

- it is the current release: the newest one, or one the release records name as current;
- it is among the newest `keep` (`--keep N`);
- it was created at or after `keep_since` (`--keep-days D`: now minus D days; `--older-than DATE`);
- it is inside the protection window: the current and the `protect_previous` before it;
- any of its AMIs is reported protected by EC2 (DeregistrationProtection enabled): never removed.

Everything else is removed. A kept release that is neither current nor recent is old: it is deprecated now
(EnableImageDeprecation) unless EC2 already deprecates it at or before that time. A release outside the
protection window that EC2 reports protected has its protection released
(DisableImageDeregistrationProtection) and stays this time; the next prune may remove it.

A snapshot tagged with a release that has no AMI left in its region (a removal whose snapshot EC2 refused to
delete, an interrupted publish) is an orphan once it is a day old (a publish in progress has its snapshot
before its AMI), unless its release is kept: prune deletes it, so no snapshot outlives its release.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from archami.config.publish import DEFAULT_PROTECT_PREVIOUS
from archami.errors import ArchamiError

# EnableImageDeprecation refuses a time in the past and rounds to the minute: "now" is a little ahead.
DEPRECATE_LEAD = timedelta(minutes=10)

KeepReason = Literal["current", "newest", "recent", "protection window", "protected in EC2"]


@dataclass(frozen=True)
class PublishedAmi:
    """One AMI of a release in one region, as EC2 lists it (aws/lifecycle.py reads them)."""

    region: str
    family: str
    variant_id: str
    release_id: str
    ami_id: str
    created: datetime
    snapshot_ids: tuple[str, ...] = ()
    protected: bool | None = None  # None: the endpoint does not report DeregistrationProtection
    deprecation: datetime | None = None  # DeprecationTime, when EC2 reports one
    name: str = ""


@dataclass(frozen=True)
class TaggedSnapshot:
    """A snapshot carrying archami's release tags, as EC2 lists it."""

    region: str
    family: str
    variant_id: str
    release_id: str
    snapshot_id: str
    started: datetime


ORPHAN_AGE = timedelta(days=1)


@dataclass(frozen=True)
class PrunePolicy:
    keep: int | None = None  # the newest N releases per variant
    keep_since: datetime | None = None  # releases created at or after this time (timezone-aware)
    protect_previous: int | None = DEFAULT_PROTECT_PREVIOUS  # protected besides the current (None: no window)
    current: frozenset[str] = frozenset()  # release ids the records call current (never removed)

    def check(self) -> None:
        if self.keep is None and self.keep_since is None:
            raise ArchamiError("give a policy: --keep N (newest releases kept), --keep-days D (or --older-than DATE)")
        if self.keep is not None and self.keep < 1:
            raise ArchamiError("--keep must be at least 1 (the newest release stays)")
        if self.protect_previous is not None and self.protect_previous < 0:
            raise ArchamiError("the protection window (protect_previous) must be 0 or more")


@dataclass(frozen=True)
class ReleaseDecision:
    """What happens to one release of one variant (all its regions)."""

    family: str
    variant_id: str
    release_id: str
    created: datetime
    amis: tuple[PublishedAmi, ...]
    action: Literal["keep", "remove"]
    reasons: tuple[KeepReason, ...] = ()  # why it is kept (empty when removed)
    deprecate: tuple[PublishedAmi, ...] = ()  # kept but old: deprecated at PrunePlan.deprecate_at
    unprotect: tuple[PublishedAmi, ...] = ()  # protected in EC2 but out of the window: protection released
    should_be_protected: bool = False  # inside the window (the release pipeline enables it)


@dataclass(frozen=True)
class PrunePlan:
    now: datetime
    deprecate_at: datetime
    decisions: list[ReleaseDecision] = field(default_factory=list)
    orphans: list[TaggedSnapshot] = field(default_factory=list)  # snapshots left behind: deleted

    @property
    def removed(self) -> list[ReleaseDecision]:
        return [d for d in self.decisions if d.action == "remove"]

    @property
    def kept(self) -> list[ReleaseDecision]:
        return [d for d in self.decisions if d.action == "keep"]

    @property
    def to_remove(self) -> list[PublishedAmi]:
        return [a for d in self.removed for a in d.amis]

    @property
    def to_deprecate(self) -> list[PublishedAmi]:
        return [a for d in self.decisions for a in d.deprecate]

    @property
    def to_unprotect(self) -> list[PublishedAmi]:
        return [a for d in self.decisions for a in d.unprotect]


def releases_newest_first(amis: Iterable[PublishedAmi]) -> dict[tuple[str, str], list[tuple[str, list[PublishedAmi]]]]:
    """(family, variant) -> [(release id, its AMIs)], newest release first."""
    grouped: dict[tuple[str, str], dict[str, list[PublishedAmi]]] = defaultdict(lambda: defaultdict(list))
    for ami in amis:
        grouped[(ami.family, ami.variant_id)][ami.release_id].append(ami)
    out = {}
    for key, releases in grouped.items():
        ordered = sorted(releases.items(), key=lambda item: (min(a.created for a in item[1]), item[0]), reverse=True)
        out[key] = [(rid, sorted(found, key=lambda a: a.region)) for rid, found in ordered]
    return out


def plan_orphans(snapshots: Iterable[TaggedSnapshot], plan: PrunePlan) -> list[TaggedSnapshot]:
    """The tagged snapshots no AMI will hold after the plan: of no kept release, not removed along with an AMI
    of theirs in the same region (aws/lifecycle.py's removal deletes those), and a day old. Pure."""
    kept = {(d.family, d.variant_id, d.release_id) for d in plan.kept}
    referenced = {s for d in plan.kept for a in d.amis for s in a.snapshot_ids}
    removed_with_ami = {(a.region, a.family, a.variant_id, a.release_id) for a in plan.to_remove}
    return sorted(
        (s for s in snapshots
         if (s.family, s.variant_id, s.release_id) not in kept and s.snapshot_id not in referenced
         and (s.region, s.family, s.variant_id, s.release_id) not in removed_with_ami
         and plan.now - s.started >= ORPHAN_AGE),
        key=lambda s: (s.region, s.snapshot_id))


def plan_prune(amis: Iterable[PublishedAmi], policy: PrunePolicy, now: datetime,
               snapshots: Iterable[TaggedSnapshot] = ()) -> PrunePlan:
    """Decide every release's fate under `policy` at `now`, and which tagged snapshots are orphans. Pure."""
    policy.check()
    deprecate_at = (now + DEPRECATE_LEAD).replace(second=0, microsecond=0)
    plan = PrunePlan(now=now, deprecate_at=deprecate_at)
    for (family, variant_id), releases in sorted(releases_newest_first(amis).items()):
        for index, (release_id, found) in enumerate(releases):
            created = min(a.created for a in found)
            recent = policy.keep_since is not None and created >= policy.keep_since
            in_window = policy.protect_previous is not None and index <= policy.protect_previous
            reasons: list[KeepReason] = []
            if index == 0 or release_id in policy.current:
                reasons.append("current")
            if policy.keep is not None and index < policy.keep:
                reasons.append("newest")
            if recent:
                reasons.append("recent")
            if in_window:
                reasons.append("protection window")
            if any(a.protected for a in found):
                reasons.append("protected in EC2")
            unprotect = tuple(a for a in found if a.protected and not in_window)
            if not reasons:
                plan.decisions.append(ReleaseDecision(family, variant_id, release_id, created, tuple(found), "remove"))
                continue
            old = "current" not in reasons and not recent
            deprecate = tuple(a for a in found if old and (a.deprecation is None or a.deprecation > deprecate_at))
            plan.decisions.append(ReleaseDecision(
                family, variant_id, release_id, created, tuple(found), "keep", tuple(reasons), deprecate, unprotect,
                should_be_protected=in_window,
            ))
    plan.orphans.extend(plan_orphans(snapshots, plan))
    return plan
