"""`archami audit` and `archami boot` from the command line: exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_audit_rules import PUBKEY, disk_image, make_clean_root, write
from typer.testing import CliRunner

from archami.cli import app
from archami.errors import ArchamiError

runner = CliRunner()


def test_audit_clean_image_exits_zero_and_dirty_one_exits_one_with_json(tmp_path: Path) -> None:
    root = make_clean_root(tmp_path / "root")
    clean = runner.invoke(app, ["audit", str(disk_image(root, tmp_path / "clean.raw"))])
    assert clean.exit_code == 0, clean.output
    write(root, "root/.ssh/authorized_keys", PUBKEY)
    dirty = runner.invoke(app, ["audit", "--json", str(disk_image(root, tmp_path / "dirty.raw"))])
    assert dirty.exit_code == 1
    report = json.loads(dirty.stdout)
    assert report["ok"] is False
    findings = [(f["rule"], f["path"]) for f in report["findings"]]
    assert findings == [("ssh-authorized-keys", "/root/.ssh/authorized_keys")]


def test_audit_of_a_root_directory(tmp_path: Path) -> None:
    root = make_clean_root(tmp_path / "root")
    write(root, "etc/machine-id", "abc\n")
    result = runner.invoke(app, ["audit", "--root", str(root)])
    assert result.exit_code == 1 and "machine-id" in result.stdout


def test_boot_rejects_a_bad_firmware_a_bad_size_and_a_missing_image(tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\0" * 1024)
    bad_choice = runner.invoke(app, ["boot", "--firmware", "xen", str(image)], env={"COLUMNS": "200"})
    assert bad_choice.exit_code == 2 and "'bios', 'uefi'" in bad_choice.output  # a usage error naming the choices
    for args, message in (
        (["--disk-size", "lots", str(image)], "--disk-size"),
        ([str(tmp_path / "nope.raw")], "nope.raw"),
    ):
        result = runner.invoke(app, ["boot", *args])
        assert isinstance(result.exception, ArchamiError) and message in str(result.exception)


def test_errors_print_one_line_without_traceback(tmp_path: Path) -> None:
    main = "from archami.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", main, "audit", str(tmp_path / "nope.raw")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 4 and "Traceback" not in result.stderr  # 4: could not audit (1: findings)
    assert result.stderr.strip().count("\n") == 0 and "nope.raw" in result.stderr
