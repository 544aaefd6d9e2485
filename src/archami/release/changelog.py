"""What changed between two releases, from their package lists: the site's news, generated, not typed.

Each variant is compared with the same variant of the previous release; identical changes are merged, and a
change seen in only some variants names them. Kernel packages come first, so the news can open with
"This release has Linux 6.x.y".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from archami.distro.rules import Comparator, rules_for
from archami.release.ids import ReleaseId
from archami.release.records import ReleaseRecord, VariantRelease, column_order

ChangeKind = Literal["added", "removed", "upgraded", "downgraded"]


class PackageChange(BaseModel):
    name: str
    kind: ChangeKind
    old: str | None = None
    new: str | None = None
    variants: list[str] = Field(default_factory=list)  # labels of the variants it applies to; empty = all

    @property
    def text(self) -> str:
        where = f" ({', '.join(self.variants)} only)" if self.variants else ""
        if self.kind == "added":
            return f"{self.name} {self.new} added{where}"
        if self.kind == "removed":
            return f"{self.name} {self.old} removed{where}"
        return f"{self.name} {self.old} → {self.new}{where}"


class Changelog(BaseModel):
    release_id: str
    previous_id: str | None
    date: str  # ISO date of the release
    news: list[str]  # sentences, kernel first
    kernel: list[PackageChange] = Field(default_factory=list)
    packages: list[PackageChange] = Field(default_factory=list)
    variants_added: list[str] = Field(default_factory=list)
    variants_removed: list[str] = Field(default_factory=list)

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for c in self.packages if c.kind == kind)


def diff_packages(old: dict[str, str], new: dict[str, str], compare: Comparator) -> list[PackageChange]:
    """Added, removed, upgraded and downgraded packages between two name -> version maps, sorted by name."""
    changes: list[PackageChange] = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before is None:
            changes.append(PackageChange(name=name, kind="added", new=after))
        elif after is None:
            changes.append(PackageChange(name=name, kind="removed", old=before))
        elif before != after:
            order = compare(after, before)
            if order != 0:  # versions equal under the distro's rules (e.g. '1.0' vs '1.00') are no change
                kind: ChangeKind = "upgraded" if order > 0 else "downgraded"
                changes.append(PackageChange(name=name, kind=kind, old=before, new=after))
    return changes


def _is_kernel(name: str, kernel_packages: set[str]) -> bool:
    # Debian's versioned image package (linux-image-6.1.0-27-cloud-amd64) changes name on an ABI bump.
    return name in kernel_packages or name.startswith("linux-image-")


def _linux_sentence(current: ReleaseRecord, previous: ReleaseRecord | None) -> str | None:
    versions: dict[str, list[str]] = {}
    for v in current.ordered_variants():
        versions.setdefault(v.linux_version, []).append(v.variant.label)
    if not versions:
        return None
    old = {v.linux_version for v in previous.variants} if previous else set()
    if len(versions) == 1:
        (version,) = versions
        was = f" (was {', '.join(sorted(old))})" if old and version not in old else ""
        return f"This release has Linux {version}{was}."
    parts = [f"{version} ({', '.join(labels)})" for version, labels in versions.items()]
    return "This release has Linux " + "; ".join(parts) + "."


def _merge(per_variant: dict[str, list[PackageChange]], labels: dict[str, str]) -> list[PackageChange]:
    """One entry per identical change; `variants` lists labels only when not every compared variant has it."""
    seen: dict[tuple[str, str, str | None, str | None], list[str]] = {}
    for variant_id, changes in per_variant.items():
        for c in changes:
            seen.setdefault((c.name, c.kind, c.old, c.new), []).append(variant_id)
    merged = []
    for (name, kind, old, new), ids in sorted(seen.items(), key=lambda item: (item[0][0], item[0][1])):
        partial = len(ids) < len(per_variant)
        merged.append(PackageChange(name=name, kind=kind, old=old, new=new,
                                    variants=[labels[i] for i in ids] if partial else []))
    return merged


def changelog(current: ReleaseRecord, previous: ReleaseRecord | None) -> Changelog:
    """The changes from `previous` (None: this is the first release) to `current`."""
    compare = rules_for(current.distro).compare_versions
    day = ReleaseId.parse(current.release_id).day.isoformat()
    before: dict[str, VariantRelease] = {v.variant.id: v for v in previous.variants} if previous else {}
    after = {v.variant.id: v for v in current.ordered_variants()}
    labels = {i: v.variant.label for i, v in after.items()}
    common = [i for i in after if i in before]
    per_variant = {i: diff_packages(before[i].packages, after[i].packages, compare) for i in common}
    merged = _merge(per_variant, labels)
    kernel_names = {v.variant.kernel_package for v in current.variants} | (
        {v.variant.kernel_package for v in previous.variants} if previous else set()
    )
    kernel = [c for c in merged if _is_kernel(c.name, kernel_names)]
    packages = [c for c in merged if not _is_kernel(c.name, kernel_names)]
    missing_before = {u.variant.id for u in previous.not_released} if previous else set()
    added = [after[i].variant for i in after if i not in before and i not in missing_before] if previous else []
    unreleased = {u.variant.id for u in current.not_released}  # failed or skipped this time: not dropped
    removed = sorted((v.variant for i, v in before.items() if i not in after and i not in unreleased),
                     key=column_order)

    log = Changelog(
        release_id=current.release_id, previous_id=previous.release_id if previous else None, date=day,
        news=[], kernel=kernel, packages=packages,
        variants_added=[v.label for v in added], variants_removed=[v.label for v in removed],
    )
    log.news = _news(log, current, previous)
    return log


def _news(log: Changelog, current: ReleaseRecord, previous: ReleaseRecord | None) -> list[str]:
    news = []
    linux = _linux_sentence(current, previous)
    if linux:
        news.append(linux)
    if previous is None:
        news.append(f"First release, {len(current.variants)} variant(s) in {len(current.regions)} region(s).")
        _not_released(news, current)
        return news
    counts = [(log.count(k), k) for k in ("upgraded", "added", "removed", "downgraded")]
    described = [f"{n} {kind}" for n, kind in counts if n]
    news.append(f"Packages since {previous.release_id}: " + (", ".join(described) if described else "no changes")
                + ".")
    if log.variants_added:
        news.append("New: " + ", ".join(log.variants_added) + ".")
    if log.variants_removed:
        news.append("No longer built: " + ", ".join(log.variants_removed) + ".")
    _not_released(news, current)
    new_regions = sorted(set(current.regions) - set(previous.regions))
    if new_regions:
        news.append("New regions: " + ", ".join(new_regions) + ".")
    return news


def changelogs(records: list[ReleaseRecord]) -> list[Changelog]:
    """One changelog per record (newest first), each against the previous release of the same image family."""
    ordered = sorted(records, key=lambda r: ReleaseId.parse(r.release_id))
    last: dict[str, ReleaseRecord] = {}
    logs = []
    for record in ordered:
        logs.append(changelog(record, last.get(record.definition_name)))
        last[record.definition_name] = record
    return list(reversed(logs))


def _not_released(news: list[str], current: ReleaseRecord) -> None:
    failed = [u.variant.label for u in current.not_released if u.outcome == "failed"]
    skipped = [u.variant.label for u in current.not_released if u.outcome == "skipped"]
    if failed:
        news.append("Partial release, failed (retried by the next run): " + ", ".join(failed) + ".")
    if skipped:
        news.append("Not published, for the reasons under the table: " + ", ".join(skipped) + ".")
