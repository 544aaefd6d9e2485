"""`archami site` and `archami latest` (release records) through the real CLI."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archami.cli import app
from archami.errors import ArchamiError

RECORDS = Path(__file__).parent / "release_records"
runner = CliRunner()


def test_site_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["site", "--releases", str(RECORDS / "arch"), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["releases"] == ["2013.05.16", "2013.05.01"]
    assert Path(out["index"]).is_file() and out["screenshot"] is None


def test_latest_from_records(tmp_path: Path) -> None:
    args = ["latest", "--releases", str(RECORDS / "arch"), "--variant", "ebs-hvm-gpu-x86_64"]
    result = runner.invoke(app, [*args, "--region", "eu-west-1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    record = json.loads((RECORDS / "arch" / "2013.05.16.json").read_text())
    gpu = next(v for v in record["variants"] if v["variant"]["id"] == "ebs-hvm-gpu-x86_64")
    assert data == {"region": "eu-west-1", "variant": "ebs-hvm-gpu-x86_64", "source": "records",
                    "release_id": "2013.05.16", "ami_id": gpu["regions"]["eu-west-1"]["ami_id"]}
    # A region where the newest release lacks the variant falls back to an older release that has it.
    shutil.copytree(RECORDS / "arch", tmp_path / "r")
    result = runner.invoke(app, ["latest", "--releases", str(tmp_path / "r"), "--variant",
                                 "instance-store-paravirtual-i686", "--region", "sa-east-1"])
    older = json.loads((RECORDS / "arch" / "2013.05.01.json").read_text())
    i686 = next(v for v in older["variants"] if v["variant"]["id"] == "instance-store-paravirtual-i686")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == i686["regions"]["sa-east-1"]["ami_id"]


def test_ami_table_renders_the_release_with_empty_cells() -> None:
    from rich.console import Console

    from archami.cli.release_cmds import ami_table
    from archami.release.records import load_record

    record = load_record(RECORDS / "arch" / "2013.05.16.json")
    console = Console(record=True, width=400)
    console.print(ami_table(record))
    text = console.export_text()
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 2}
    assert set(lines) >= {"us-east-1", "sa-east-1"}
    gpu = record.variant("ebs-hvm-gpu-x86_64")
    assert gpu is not None
    assert gpu.regions["us-east-1"].ami_id in lines["us-east-1"]
    assert lines["sa-east-1"].split("│")[-2].strip() == ""  # no gpu AMI there: an empty cell


def test_latest_arch_picks_the_same_variant_for_another_architecture() -> None:
    from archami.release.lookup import variant_for_architecture

    assert variant_for_architecture("trixie-ebs-hvm-x86_64", "arm64") == "trixie-ebs-hvm-aarch64"
    assert variant_for_architecture("ebs-hvm-gpu-aarch64-lts", "x86_64") == "ebs-hvm-gpu-x86_64-lts"
    assert variant_for_architecture("trixie-ebs-hvm-aarch64", "AARCH64") == "trixie-ebs-hvm-aarch64"
    with pytest.raises(ArchamiError, match="unknown architecture"):
        variant_for_architecture("trixie-ebs-hvm-x86_64", "riscv64")
    with pytest.raises(ArchamiError, match="exactly one architecture"):
        variant_for_architecture("trixie-ebs-hvm", "arm64")


def _with_arm64_variant(tmp_path: Path) -> Path:
    """The 2026.11.25 Debian record with an arm64 trixie variant published beside the x86_64 one."""
    text = json.loads((RECORDS / "debian" / "2026.11.25.json").read_text())
    x86 = next(v for v in text["variants"] if v["variant"]["id"] == "trixie-ebs-hvm-x86_64")
    arm = json.loads(json.dumps(x86).replace("x86_64", "aarch64").replace("amd64", "arm64"))
    arm["boot_mode"] = "uefi"
    for number, region in enumerate(arm["regions"].values()):
        region["ami_id"] = f"ami-0a4{number:014d}"
    text["variants"].append(arm)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "2026.11.25.json").write_text(json.dumps(text))
    return tmp_path / "r"


def test_latest_arch_from_records_and_both_columns_on_the_page(tmp_path: Path) -> None:
    records = _with_arm64_variant(tmp_path)
    args = ["latest", "--releases", str(records), "--variant", "trixie-ebs-hvm-x86_64", "--region", "us-east-1"]
    x86 = runner.invoke(app, args)
    arm = runner.invoke(app, [*args, "--arch", "arm64", "--json"])
    assert x86.exit_code == 0 and arm.exit_code == 0, x86.output + arm.output
    assert json.loads(arm.stdout)["variant"] == "trixie-ebs-hvm-aarch64"
    assert json.loads(arm.stdout)["ami_id"] == "ami-0a400000000000000" != x86.stdout.strip()
    site = runner.invoke(app, ["site", "--releases", str(records), "--out", str(tmp_path / "site"), "--json"])
    assert site.exit_code == 0, site.output
    markdown = Path(json.loads(site.stdout)["markdown"]).read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| region |"))
    # x86_64 before aarch64, as the seed's table put x86_64 before i386.
    assert header.index("trixie ebs hvm x86_64") < header.index("trixie ebs hvm aarch64")
    assert "ami-0a400000000000000" in markdown
