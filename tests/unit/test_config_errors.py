"""Every bad definition in bad_definitions/ gives one error naming file, key and reason — no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archami.config import load_definition
from archami.errors import ConfigError

CORPUS = sorted((Path(__file__).parent / "bad_definitions").glob("*.toml"))


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text(encoding="utf-8").removeprefix("\ufeff").splitlines()[0]
    assert first.startswith("# expect: "), path
    key, reason = first.removeprefix("# expect: ").split(" | ")
    return key.strip(), reason.strip()


def test_corpus_is_not_empty() -> None:
    assert len(CORPUS) >= 24 + 60


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_definition_names_file_key_reason(path: Path) -> None:
    key, reason = _expectation(path)
    with pytest.raises(ConfigError) as caught:
        load_definition(path)
    err = caught.value
    assert err.file == str(path)
    assert err.key == key
    assert reason in err.reason
    assert str(path) in str(err)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_definition(tmp_path / "nope.toml")


def test_non_utf8_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_definition(bad)


@pytest.mark.parametrize("path", CORPUS[:3] + [p for p in CORPUS if p.stem == "paravirtual_aarch64"])
def test_cli_prints_one_line_and_no_traceback(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from archami.cli import main; main()", "validate", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},  # PYTHONPATH kept: the archami under test, not another install
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and str(path) in lines[0]
