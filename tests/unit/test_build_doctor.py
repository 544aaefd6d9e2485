"""`archami doctor [COMMAND]`: the host tool table (the Makefile installs exactly its packages), one command's
share of it, the host checks, whole names at any width, and --json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archami import hostchecks as checks
from archami import hosttools as tools
from archami.cli import app
from archami.cli.commands import COMMANDS
from archami.errors import ToolMissingError

REPO = Path(__file__).resolve().parents[2]


def makefile_apt_packages() -> list[str]:
    text = (REPO / "Makefile").read_text()
    match = re.search(r"^APT_PACKAGES :=(.*?)\n\n", text, re.S | re.M)
    assert match, "Makefile has no APT_PACKAGES"
    return match.group(1).replace("\\\n", " ").split()


def doctor(*args: str, columns: int = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archami.cli", "doctor", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": str(columns), "ARCHAMI_ACCEL": "tcg", **(env or {})},
                          timeout=120, cwd=REPO)


def no_tools_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(tools, "_EXTRA_PATH", "/nonexistent")


def test_every_tool_names_a_debian_and_an_arch_package_and_commands_that_exist() -> None:
    names = [t.name for t in tools.HOST_TOOLS]
    assert len(names) == len(set(names))
    for tool in tools.HOST_TOOLS:
        assert tool.debian and tool.arch
        assert (tool.command is None) != (tool.path is None)
        assert set(tool.used_by) <= {*COMMANDS, "tests"}, tool
    for needed in ("mmdebstrap", "pacman", "mkfs.ext4", "sfdisk", "mtools", "grub-mkimage", "qemu-system-x86_64",
                   "OVMF", "ssh", "gpg", "zstd"):
        assert needed in names


def test_the_makefile_installs_exactly_the_packages_of_the_table() -> None:
    # make deps runs before Python exists on a fresh machine, so the Makefile holds its own copy of the list.
    assert sorted(makefile_apt_packages()) == tools.apt_packages("x86_64")
    # -S: no site-packages, so the list prints with the standard library alone (before the virtualenv exists).
    source = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    printed = subprocess.run([sys.executable, "-S", "-m", "archami.hosttools", "--apt-packages"],
                             capture_output=True, text=True, check=True, env=source)
    assert printed.stdout.split() == tools.apt_packages()


def test_make_deps_leaves_recommends_out() -> None:
    recipe = (REPO / "Makefile").read_text().split("$(STAMP_APT):", 1)[1].split("\n\n", 1)[0]
    assert "apt-get install" in recipe and "--no-install-recommends" in recipe


def test_doctor_passes_on_a_machine_set_up_by_the_makefile() -> None:
    # CI installs every host package through the Makefile's APT_PACKAGES (and runs as root): doctor must agree.
    result = doctor("--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["command"] is None
    assert [t["name"] for t in report["tools"]] == [t.name for t in tools.tools_for(None)]
    assert all(t["status"] == "ok" for t in report["tools"] if t["required"])


def test_doctor_fails_and_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    no_tools_on_path(monkeypatch)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 3
    assert "missing" in result.output
    assert "apt-get install" in result.output and "mmdebstrap" in result.output
    assert "pacman -S --needed" in result.output


def test_one_command_checks_only_its_own_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    no_tools_on_path(monkeypatch)
    validate = CliRunner().invoke(app, ["doctor", "validate", "--json"])
    assert validate.exit_code == 0, validate.output  # nothing validate runs is missing
    assert json.loads(validate.stdout)["tools"] == []
    boot = json.loads(CliRunner().invoke(app, ["doctor", "boot", "--json"]).stdout)
    assert {t["name"] for t in boot["tools"]} == {t.name for t in tools.tools_for("boot")}
    assert "qemu-system-x86" in boot["install"][0].split() and boot["ok"] is False
    assert "mmdebstrap" not in {t["name"] for t in boot["tools"]}


def test_a_missing_optional_tool_is_a_warning_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    no_tools_on_path(monkeypatch)
    result = CliRunner().invoke(app, ["doctor", "site"])
    assert result.exit_code == 0, result.output
    assert "absent" in result.output and "chromium" in result.output


def test_an_unknown_command_is_refused_naming_the_known_ones() -> None:
    result = doctor("bulid")
    assert result.returncode == 2 and "'bulid' is not an archami command" in result.stderr
    assert "build" in result.stderr


@pytest.mark.parametrize("columns", [80, 40])
def test_names_are_whole_at_any_width(columns: int) -> None:
    result = doctor(columns=columns)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    for tool in tools.tools_for(None):
        assert any(tool.name in line for line in lines), f"{tool.name} cut at {columns} columns"
    for name in ("root", "kvm", "cache disk", "arch mirror", "aws credentials"):
        assert any(name in line for line in lines)


def test_the_cache_checked_is_the_one_given(tmp_path: Path) -> None:
    report = json.loads(doctor("kernel", "--cache", str(tmp_path / "cache"), "--json").stdout)
    (disk,) = [c for c in report["checks"] if c["name"] == "cache disk"]
    assert str(tmp_path / "cache") in disk["detail"] and "kernel" in disk["detail"]


def test_root_is_needed_to_build_only() -> None:
    assert checks.check_root(euid=1000).status == "failed"
    assert checks.check_root(euid=0).status == "ok"
    assert checks.check_root in checks.checks_for("build")
    assert checks.check_root not in checks.checks_for("boot")


def test_the_arch_mirror_setting_is_read_and_judged() -> None:
    assert checks.check_arch_mirror({}).status == "warning"
    good = checks.check_arch_mirror({"ARCHAMI_ARCH_MIRROR": "https://m.example/$repo/os/$arch"})
    assert good.status == "ok" and "https://m.example/$repo/os/$arch" in good.detail
    bad = checks.check_arch_mirror({"ARCHAMI_ARCH_MIRROR": "https://m.example/archlinux"})
    assert bad.status == "warning" and "https://m.example/archlinux" in bad.detail


def test_aws_credentials_are_found_without_calling_aws(tmp_path: Path) -> None:
    assert checks.check_aws_credentials({}, home=tmp_path).status == "warning"
    env_keys = checks.check_aws_credentials({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
                                            home=tmp_path)
    assert env_keys.status == "ok" and "s3cr3t" not in env_keys.detail
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile ci]\nrole_arn = arn:aws:iam::1:role/x\n")
    assert checks.check_aws_credentials({"AWS_PROFILE": "ci"}, home=tmp_path).status == "ok"
    assert checks.check_aws_credentials({"AWS_PROFILE": "other"}, home=tmp_path).status == "warning"
    (tmp_path / ".aws" / "credentials").write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
    found = checks.check_aws_credentials({}, home=tmp_path)
    assert found.status == "ok" and "'default'" in found.detail and "B" not in found.detail.split()


def test_kvm_follows_archami_accel_without_probing() -> None:
    assert checks.check_kvm({"ARCHAMI_ACCEL": "tcg"}).status == "warning"
    assert checks.check_kvm({"ARCHAMI_ACCEL": "kvm"}).status == "ok"


def test_free_disk_is_measured_on_the_nearest_existing_directory(tmp_path: Path) -> None:
    cache = tmp_path / "not" / "yet"  # a first build creates the cache: its file system is the parent's
    result = checks.check_cache_disk("build", cache)
    assert str(cache) in result.detail and "GiB free" in result.detail
    assert not cache.exists()


def test_require_names_the_missing_tool_and_package(monkeypatch: pytest.MonkeyPatch) -> None:
    no_tools_on_path(monkeypatch)
    with pytest.raises(ToolMissingError, match=r"sfdisk.*apt-get install fdisk"):
        tools.require("sfdisk")
