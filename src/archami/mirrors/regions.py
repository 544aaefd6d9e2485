"""Per-AWS-region mirror lists for the ec2-pacman-mirrors package.

Measurements made on an instance in a region (`archami mirrors rank --region R --measurements FILE`) rank
that region's list. A region nobody measured falls back to geography — mirrors in the region's country, by
the status document's score — and, without any mirror in that country, to the global list; each list's
header says which.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Literal

from archami.distro.arch_conf import mirrorlist
from archami.errors import ArchamiError
from archami.mirrors.rank import MeasurementReport, rank
from archami.mirrors.status import Mirror, by_status_score

# Where each AWS region's data centres are (ISO 3166 country code of the status document's country_code).
REGION_COUNTRY: dict[str, str] = {
    "us-east-1": "US", "us-east-2": "US", "us-west-1": "US", "us-west-2": "US",
    "us-gov-east-1": "US", "us-gov-west-1": "US",
    "ca-central-1": "CA", "ca-west-1": "CA", "mx-central-1": "MX", "sa-east-1": "BR",
    "eu-west-1": "IE", "eu-west-2": "GB", "eu-west-3": "FR", "eu-central-1": "DE", "eu-central-2": "CH",
    "eu-north-1": "SE", "eu-south-1": "IT", "eu-south-2": "ES",
    "il-central-1": "IL", "me-south-1": "BH", "me-central-1": "AE", "af-south-1": "ZA",
    "ap-east-1": "HK", "ap-east-2": "TW", "ap-south-1": "IN", "ap-south-2": "IN",
    "ap-northeast-1": "JP", "ap-northeast-2": "KR", "ap-northeast-3": "JP",
    "ap-southeast-1": "SG", "ap-southeast-2": "AU", "ap-southeast-3": "ID", "ap-southeast-4": "AU",
    "ap-southeast-5": "MY", "ap-southeast-6": "NZ", "ap-southeast-7": "TH",
    "cn-north-1": "CN", "cn-northwest-1": "CN",
}

GLOBAL = "global"
Source = Literal["measured", "geography", "global"]


@dataclass(frozen=True)
class RegionList:
    region: str  # an AWS region, or "global"
    source: Source
    servers: list[str]  # mirrorlist Server values, best first
    note: str

    @property
    def file_name(self) -> str:
        return f"{self.region}.mirrorlist"

    def text(self) -> str:
        return mirrorlist(self.servers, header=f"{self.region}: {self.note}")


def _reports_by_region(reports: Sequence[MeasurementReport]) -> dict[str, list[MeasurementReport]]:
    grouped: dict[str, list[MeasurementReport]] = defaultdict(list)
    for report in reports:
        if not report.region:
            raise ArchamiError("a measurement file without a region cannot be merged (rank with --region R)")
        grouped[report.region].append(report)
    return grouped


def _measured_order(reports: Sequence[MeasurementReport], allowed: dict[str, Mirror]) -> list[Mirror]:
    """Mirrors ranked by mean download seconds over the reports; a failure counts as the full deadline."""
    seconds: dict[str, list[float]] = defaultdict(list)
    answered: set[str] = set()
    for report in reports:
        ranked = {m.url for m in rank(r.measurement() for r in report.measurements)}
        for record in report.measurements:
            if record.url not in allowed:
                continue
            if record.url in ranked:
                answered.add(record.url)
                seconds[record.url].append(record.seconds or 0.0)
            else:
                seconds[record.url].append(report.deadline)
    order = sorted(answered, key=lambda url: (mean(seconds[url]), url))
    return [allowed[url] for url in order]


def region_lists(
    mirrors: Sequence[Mirror],
    reports: Sequence[MeasurementReport],
    regions: Sequence[str] = tuple(REGION_COUNTRY),
    top: int = 10,
) -> list[RegionList]:
    """One list per region plus the global one. `mirrors` are the status mirrors that passed the filter."""
    unknown = sorted(set(regions) - set(REGION_COUNTRY))
    if unknown:
        raise ArchamiError(f"unknown AWS region(s): {', '.join(unknown)} (known: {', '.join(REGION_COUNTRY)})")
    allowed = {m.url: m for m in mirrors}
    if not allowed:
        raise ArchamiError("no mirror passed the filter: nothing to rank")
    grouped = _reports_by_region(reports)

    if reports:
        global_order = _measured_order(reports, allowed)[:top]
        global_note = f"ranked by mean download time over {len(grouped)} region(s)' measurements"
    else:
        global_order = by_status_score(mirrors)[:top]
        global_note = "no measurements: ordered by the mirror status score"
    if not global_order:
        raise ArchamiError("no measured mirror answered in any region: refusing to write empty lists")
    result = [RegionList(GLOBAL, "global", [m.server for m in global_order], global_note)]

    for region in regions:
        measured = _measured_order(grouped.get(region, []), allowed)[:top]
        country = REGION_COUNTRY[region]
        if measured:
            note = f"ranked by measurements made in {region} ({len(grouped[region])} run(s))"
            result.append(RegionList(region, "measured", [m.server for m in measured], note))
            continue
        why = "measurements had no answering mirror" if region in grouped else "no measurements"
        local = by_status_score(m for m in mirrors if m.country_code == country)[:top]
        if local:
            note = f"{why}: mirrors in {country} (where {region} is), by status score"
            result.append(RegionList(region, "geography", [m.server for m in local], note))
        else:
            note = f"{why} and no mirror in {country}: the global list"
            result.append(RegionList(region, "global", [m.server for m in global_order], note))
    return result


def write_region_lists(lists: Sequence[RegionList], out_dir: Path) -> list[Path]:
    """Write <region>.mirrorlist and global.mirrorlist (the ec2-pacman-mirrors package's mirrorlists/)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in lists:
        path = out_dir / entry.file_name
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(entry.text())
        tmp.replace(path)
        written.append(path)
    return written
