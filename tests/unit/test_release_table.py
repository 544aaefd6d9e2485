from pathlib import Path

from archami.release.records import load_records
from archami.release.table import launch_url, markdown_table, release_table

RECORDS = Path(__file__).parent / "release_records"
SEED_COLUMNS = [
    "ebs paravirtual x86_64", "s3 paravirtual x86_64", "ebs paravirtual i686", "s3 paravirtual i686",
    "ebs hvm x86_64", "ebs hvm gpu x86_64",
]
SEED_REGIONS = ["us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2",
                "ap-northeast-1", "sa-east-1"]


def test_columns_in_the_seeds_order_and_regions_as_rows() -> None:
    current, previous = load_records(RECORDS / "arch")
    table = release_table(current)  # the record lists its variants out of order on purpose
    assert [c.label for c in table.columns] == SEED_COLUMNS
    assert [region for region, _ in table.rows] == SEED_REGIONS
    assert [c.label for c in release_table(previous).columns] == SEED_COLUMNS[:-1]


def test_missing_cells_stay_empty() -> None:
    current, _ = load_records(RECORDS / "arch")
    table = release_table(current)
    cells = {(region, c.variant.id): c for region, row in table.rows for c in row}
    assert all(len(row) == len(table.columns) for _, row in table.rows)
    gpu_regions = {region for (region, vid), c in cells.items() if vid == "ebs-hvm-gpu-x86_64" and c.image}
    assert gpu_regions == {"us-east-1", "eu-west-1"}
    assert cells[("sa-east-1", "instance-store-paravirtual-i686")].image is None
    assert cells[("sa-east-1", "instance-store-paravirtual-i686")].url is None
    gpu = current.variant("ebs-hvm-gpu-x86_64")
    assert gpu is not None
    assert cells[("us-east-1", "ebs-hvm-gpu-x86_64")].image == gpu.regions["us-east-1"]
    # 6 variants x 8 regions, less 6 gpu regions and 1 instance-store i686 region.
    assert len(table.ami_ids) == 6 * 8 - 6 - 1


def test_markdown_table_matches_the_html_table() -> None:
    current, _ = load_records(RECORDS / "arch")
    table = release_table(current)
    lines = markdown_table(table).splitlines()
    assert lines[0] == "| region | " + " | ".join(SEED_COLUMNS) + " |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert len(lines) == 2 + len(SEED_REGIONS)
    sa_east = [cell.strip() for cell in lines[-1].strip("|").split("|")]
    assert sa_east[0] == "sa-east-1" and len(sa_east) == 1 + len(SEED_COLUMNS)
    assert sa_east[4] == "" and sa_east[6] == ""  # s3 paravirtual i686 and the gpu column
    for region, row in table.rows:
        for cell in row:
            if cell.image:
                assert f"[{cell.image.ami_id}]({launch_url(region, cell.image.ami_id)})" in "\n".join(lines)


def test_launch_url() -> None:
    assert launch_url("eu-west-1", "ami-0123") == (
        "https://console.aws.amazon.com/ec2/home?region=eu-west-1#LaunchInstanceWizard:ami=ami-0123"
    )
