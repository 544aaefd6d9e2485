"""`archami site` and `archami latest` (release records) through the real CLI."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from archami.cli import app

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
