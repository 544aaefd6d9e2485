"""`archami doctor`: every tool listed with its packages; non-zero exit when one is missing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from archami import hosttools as tools
from archami.cli import app
from archami.errors import ToolMissingError


def test_every_tool_names_a_debian_and_an_arch_package() -> None:
    names = [t.name for t in tools.HOST_TOOLS]
    assert len(names) == len(set(names))
    for tool in tools.HOST_TOOLS:
        assert tool.debian and tool.arch
        assert (tool.command is None) != (tool.path is None)
    for needed in ("mmdebstrap", "pacman", "mkfs.ext4", "sfdisk", "mtools", "grub-mkimage", "qemu-system-x86_64",
                   "OVMF", "ssh", "gpg", "zstd"):
        assert needed in names


def test_doctor_passes_on_a_machine_set_up_by_the_makefile() -> None:
    # CI installs every host package through the Makefile's APT_PACKAGES: doctor must agree.
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "all host tools present" in result.output


def test_doctor_fails_and_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(tools, "_EXTRA_PATH", "/nonexistent")
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 3
    assert "missing" in result.output
    assert "apt-get install" in result.output and "mmdebstrap" in result.output
    assert "pacman -S --needed" in result.output


def test_require_names_the_missing_tool_and_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(tools, "_EXTRA_PATH", "/nonexistent")
    with pytest.raises(ToolMissingError, match=r"sfdisk.*apt-get install fdisk"):
        tools.require("sfdisk")
