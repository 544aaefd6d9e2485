"""The agent's entry point: its options, and bad settings ending in a clear exit status, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archami.firstboot.agent.main import main, parse_args


def test_options() -> None:
    args = parse_args(["--phase", "early", "--root=/mnt", "--imds-url", "http://a", "--imds-url=http://b",
                       "--deadline", "2.5"])
    assert args["phase"] == "early" and args["root"] == "/mnt"
    assert args["imds_url"] == ["http://a", "http://b"]
    assert args["deadline"] == 2.5 and args["request_timeout"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--phase", "middle"], "--phase must be one of"), (["--bogus", "1"], "unknown option --bogus"),
     (["--root"], "--root needs a value"), (["stray"], "unknown option stray")],
)
def test_bad_options(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_args(argv)


def test_bad_settings_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "etc/archami/firstboot.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"grow_root": "sometimes"}))
    assert main(["--root", str(tmp_path), "--phase", "late"]) == 2
    assert "setting 'grow_root' must be bool" in capfd.readouterr().err
    assert not (tmp_path / "var").exists()


def test_keyring_phase_without_pacman_is_a_skip(tmp_path: Path) -> None:
    settings = tmp_path / "etc/archami/firstboot.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"distro": "debian"}))
    assert main(["--root", str(tmp_path), "--phase", "keyring"]) == 0
    status = json.loads((tmp_path / "var/lib/archami/firstboot/status-keyring.json").read_text())
    assert status["ok"] is True and status["steps"] == {"keyring": "skipped: no pacman"}
