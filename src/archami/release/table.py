"""A release as the seed's table: regions as rows, variants as columns, an empty cell where a variant is
missing in a region, and a "failed" or "skipped" column for a variant of the release that has no AMIs (with
the reason beside it). The HTML page, the Markdown twin and the CLI summary all render this one model."""

from __future__ import annotations

from dataclasses import dataclass

from archami.release.records import (
    RegionAmi,
    ReleaseRecord,
    UnreleasedVariant,
    VariantInfo,
    VariantRelease,
    column_order,
)

# Regions in the order AWS lists them on its own pages (older regions first, as on the seed's page);
# regions not listed here follow alphabetically.
REGION_ORDER = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
    "eu-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-7", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-south-2",
    "ap-east-1", "sa-east-1", "me-south-1", "me-central-1", "il-central-1", "af-south-1", "mx-central-1",
]

CONSOLE_LAUNCH = "https://console.aws.amazon.com/ec2/home?region={region}#LaunchInstanceWizard:ami={ami}"


def region_order(region: str) -> tuple[int, str]:
    return (REGION_ORDER.index(region), "") if region in REGION_ORDER else (len(REGION_ORDER), region)


def launch_url(region: str, ami_id: str) -> str:
    """The EC2 console's launch wizard for an AMI (a link in a page: nothing is fetched)."""
    return CONSOLE_LAUNCH.format(region=region, ami=ami_id)


@dataclass(frozen=True)
class Column:
    """One variant of the release: published (`release`) or not (`unreleased`, failed or skipped)."""

    variant: VariantInfo
    release: VariantRelease | None
    unreleased: UnreleasedVariant | None = None

    @property
    def id(self) -> str:
        return self.variant.id

    @property
    def label(self) -> str:
        return self.variant.label


@dataclass(frozen=True)
class Cell:
    region: str
    variant: VariantInfo
    image: RegionAmi | None  # None: this variant was not published in this region
    unreleased: UnreleasedVariant | None = None  # the whole variant has no AMIs: why

    @property
    def url(self) -> str | None:
        return launch_url(self.region, self.image.ami_id) if self.image else None

    @property
    def text(self) -> str:
        """What a cell says without its link: the AMI id, 'failed'/'skipped', or nothing."""
        if self.image:
            return self.image.ami_id
        return self.unreleased.outcome if self.unreleased else ""


@dataclass(frozen=True)
class ReleaseTable:
    release_id: str
    columns: list[Column]
    rows: list[tuple[str, list[Cell]]]  # (region, one cell per column)
    status: str = "complete"  # the record's: complete or partial

    @property
    def ami_ids(self) -> list[str]:
        return [c.image.ami_id for _, cells in self.rows for c in cells if c.image]

    @property
    def unreleased(self) -> list[UnreleasedVariant]:
        return [c.unreleased for c in self.columns if c.unreleased]


def release_table(record: ReleaseRecord) -> ReleaseTable:
    columns = [Column(v.variant, v) for v in record.variants]
    columns += [Column(u.variant, None, u) for u in record.not_released]
    columns.sort(key=lambda c: column_order(c.variant))
    regions = sorted(record.regions, key=region_order)
    rows = [
        (region, [Cell(region, c.variant, c.release.regions.get(region) if c.release else None, c.unreleased)
                  for c in columns])
        for region in regions
    ]
    return ReleaseTable(record.release_id, columns, rows, record.status)


def unreleased_line(u: UnreleasedVariant) -> str:
    """'ebs paravirtual x86_64: skipped: paravirtual: ...' / '...: failed at build: ...'."""
    how = f"failed at {u.step}" if u.outcome == "failed" and u.step else u.outcome
    return f"{u.variant.label}: {how}: {u.reason}"


def markdown_table(table: ReleaseTable) -> str:
    """GitHub-flavoured Markdown: the same table, AMI ids as launch links, empty cells left empty, a failed or
    skipped variant's cells saying so and the reasons listed under the table."""
    lines = [
        "| region | " + " | ".join(c.label for c in table.columns) + " |",
        "|---" * (len(table.columns) + 1) + "|",
    ]
    for region, cells in table.rows:
        shown = [f"[{c.image.ami_id}]({c.url})" if c.image else c.text for c in cells]
        lines.append(f"| {region} | " + " | ".join(shown) + " |")
    if table.unreleased:
        lines.append("")
        if table.status == "partial":
            lines.append("Partial release: a failed variant is retried by the next run of the release.")
            lines.append("")
        lines += [f"- {unreleased_line(u)}" for u in table.unreleased]
    return "\n".join(lines) + "\n"
