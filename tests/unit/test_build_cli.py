"""`archami build` argument errors: one line naming file, key and reason, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARCHAMI = str(Path(sys.executable).parent / "archami")


def test_unknown_variant_lists_the_valid_ones(tmp_path: Path) -> None:
    result = subprocess.run([ARCHAMI, "build", str(REPO / "examples/debian.toml"), "--variant", "nope",
                             "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--variant" in result.stderr and "trixie-ebs-hvm-x86_64" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_definition_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run([ARCHAMI, "build", str(tmp_path / "none.toml")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr
