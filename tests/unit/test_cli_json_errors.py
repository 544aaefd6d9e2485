"""With --json an error is one JSON object on stdout (file, key, reason); without, one red line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archami.cli.errors import EXIT_INTERRUPTED, run

BAD = Path(__file__).parent / "bad_definitions" / "bad_arch.toml"


def archami(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from archami.cli import main; main()", *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)


def test_a_definition_error_names_file_key_and_reason_as_json() -> None:
    expected_key = BAD.read_text().splitlines()[0].removeprefix("# expect: ").split(" | ")[0].strip()
    result = archami("plan", str(BAD), "--json")
    assert result.returncode == 2 and result.stderr == ""
    error = json.loads(result.stdout)["error"]
    assert error["file"] == str(BAD) and error["key"] == expected_key and error["reason"]


def test_any_other_error_has_a_reason_and_null_file_and_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.raw"
    result = archami("audit", str(missing), "--json")
    assert result.returncode == 4  # could not audit (1 is for findings)
    error = json.loads(result.stdout)["error"]
    assert set(error) == {"file", "key", "reason"}  # the same fields for every error
    assert error["file"] is None and error["key"] is None and str(missing) in error["reason"]


def test_without_json_the_error_is_one_line_on_stderr() -> None:
    result = archami("plan", str(BAD))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0


def test_ctrl_c_with_json_is_the_error_object_and_exit_130(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # Typer turns Ctrl-C inside a command into exit code 130 when it runs non-standalone (as with --json).
    monkeypatch.setattr(sys, "argv", ["archami", "boot", "x.raw", "--json"])
    with pytest.raises(SystemExit) as exited:
        run(lambda **options: EXIT_INTERRUPTED)
    assert exited.value.code == EXIT_INTERRUPTED
    assert json.loads(capsys.readouterr().out) == {"error": {"file": None, "key": None, "reason": "interrupted"}}


def test_a_bug_with_json_is_the_error_object_and_a_line_on_stderr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["archami", "plan", "x.toml", "--json"])
    monkeypatch.setenv("ARCHAMI_LOG_DIR", str(tmp_path))

    def broken(**options: object) -> object:
        raise ZeroDivisionError("division by zero")

    with pytest.raises(SystemExit) as exited:
        run(broken)
    assert exited.value.code == 70
    captured = capsys.readouterr()
    reason = json.loads(captured.out)["error"]["reason"]
    assert "ZeroDivisionError" in reason and "this is a bug" in reason
    log = next(tmp_path.glob("archami-crash-*.log"))
    assert str(log) in reason and "ZeroDivisionError" in log.read_text()
    assert "ZeroDivisionError" in captured.err
