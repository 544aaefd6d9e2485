"""Which regions to publish to: a list, or every enabled region of the source region's partition."""

from __future__ import annotations

from archami.aws.clients import Clients
from archami.errors import ArchamiError


def enabled_regions(clients: Clients, source_region: str) -> list[str]:
    """Regions enabled for this account, in the source region's partition (aws, aws-cn, aws-us-gov).

    describe_regions without AllRegions lists opted-in regions only; an emulator may list every partition's
    regions, so the partition filter matters there.
    """
    partition = clients.partition(source_region)
    answer = clients.ec2(source_region).describe_regions(AllRegions=False)["Regions"]
    names = sorted(
        r["RegionName"]
        for r in answer
        if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"
        and clients.partition(r["RegionName"]) == partition
    )
    if source_region not in names:
        raise ArchamiError(f"source region {source_region} is not enabled for this account")
    return [source_region, *(n for n in names if n != source_region)]


def resolve_regions(clients: Clients, regions: list[str] | None, source_region: str | None) -> list[str]:
    """The ordered region list; its first entry is the source region (upload + register happen there).

    None or ["all"]: every enabled region of the source region's partition.
    """
    if regions and regions != ["all"]:
        source = source_region or regions[0]
        if source_region and source_region not in regions:
            regions = [source_region, *regions]
        ordered = [source, *(r for r in dict.fromkeys(regions) if r != source)]
        partition = clients.partition(source)
        foreign = [r for r in ordered if clients.partition(r) != partition]
        if foreign:
            raise ArchamiError(f"regions {', '.join(foreign)} are not in the {partition} partition of {source}")
        return ordered
    # No list means the whole partition: a release is published everywhere it can be launched.
    return enabled_regions(clients, source_region or clients.default_region)
