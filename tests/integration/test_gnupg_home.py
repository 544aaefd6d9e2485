"""A GnuPG home too deep for gpg-agent's sockets still works through reachable_home (real pacman-key, gpg)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archami.gnupg_home import reachable_home, socket_path_fits
from archami.runner import run_text

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("pacman-key") is None, reason="needs pacman-key"),
]


def _deep_home(tmp_path: Path) -> Path:
    home = tmp_path / ("d" * 60) / ("e" * 60) / "gnupg"
    home.mkdir(parents=True, mode=0o700)
    return home


def _init(home: Path) -> int:
    result = run_text(["pacman-key", "--gpgdir", str(home), "--init"], timeout=120)
    run_text(["gpgconf", "--homedir", str(home), "--kill", "all"], timeout=30)
    return result.returncode if "can't connect to the agent" not in result.stderr else -1


def test_a_deep_home_fails_on_its_own_and_works_through_the_link(tmp_path: Path) -> None:
    home = _deep_home(tmp_path)
    assert not socket_path_fits(home)
    assert _init(home) != 0  # the failure CI saw: the agent cannot make its sockets there
    shutil.rmtree(home)
    home.mkdir(mode=0o700)
    with reachable_home(home) as short:
        assert short != home and socket_path_fits(short)
        assert _init(short) == 0
    with reachable_home(home) as again:
        assert again == short  # the agent keeps the name it was started with: one name per home
    # pacman-key made its master key in the deep home itself (listing public keys needs no agent)
    listing = run_text(["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-keys"], timeout=60)
    assert "pub:" in listing.stdout and list((home / "private-keys-v1.d").glob("*.key"))
