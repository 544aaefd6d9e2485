"""CLI start-up stays light: `--help`, `validate` and `plan` import neither boto3 nor the build stage.

Each command runs in a fresh interpreter that prints the modules it imported; `commands.py` (the table
`archami --help` is drawn from) must agree with what the command modules register. Timing is measured by
bench/cli_startup.py, never asserted here.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command_name

import archami.cli
from archami.cli.app import app
from archami.cli.commands import COMMANDS

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "archami.aws", "archami.image", "archami.vm")
# Runs the real entry point, then prints every module the process imported (also when main() exits).
WRAPPER = """
import sys
try:
    from archami.cli import main
    main()
finally:
    sys.stdout.write("\\n--modules--\\n" + "\\n".join(sorted(sys.modules)) + "\\n")
"""


def run_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "120"}, cwd=REPO)
    output, _, modules = result.stdout.partition("\n--modules--\n")
    return subprocess.CompletedProcess(result.args, result.returncode, output, result.stderr), set(modules.split())


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_help_lists_every_command_without_importing_a_command_module() -> None:
    result, modules = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for name, entry in COMMANDS.items():
        assert name in result.stdout
        assert entry.help[:40] in result.stdout  # the listing line, possibly wrapped after that
    assert heavy(modules) == []
    assert sorted(m for m in modules if m.startswith("archami.cli.") and m.endswith("_cmds")) == []


@pytest.mark.parametrize("args", [["validate", "examples/debian.toml"], ["plan", "examples/arch.toml"]])
def test_definition_commands_import_only_the_definition_stage(args: list[str]) -> None:
    result, modules = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert heavy(modules) == []
    assert "archami.cli.config_cmds" in modules
    assert [m for m in modules if m.startswith("archami.cli.") and m.endswith("_cmds")] == ["archami.cli.config_cmds"]


def test_a_command_help_loads_its_module_only() -> None:
    result, modules = run_cli("repo", "verify", "--help")
    assert result.returncode == 0, result.stderr
    assert "--keyring" in result.stdout
    assert "archami.cli.repo_cmds" in modules
    assert "archami.cli.publish_cmds" not in modules and "boto3" not in modules


def test_a_mistyped_command_gets_a_suggestion_from_every_command() -> None:
    result, modules = run_cli("valdate", "examples/debian.toml")
    assert result.returncode == 2
    assert "No such command 'valdate'" in result.stderr and "'validate'" in result.stderr
    assert heavy(modules) == []


def test_the_table_names_exactly_the_commands_the_modules_register() -> None:
    # Every *_cmds.py on disk, listed or not: a new module without its line in commands.py fails here.
    for path in sorted(Path(archami.cli.__file__).parent.glob("*_cmds.py")):
        importlib.import_module(f"archami.cli.{path.stem}")
    defined: dict[str, str] = {}
    for info in app.registered_commands:
        assert info.callback is not None
        defined[info.name or get_command_name(info.callback.__name__)] = info.callback.__module__
    for group in app.registered_groups:
        assert isinstance(group.name, str), "add_typer() needs name=, the command's name in commands.py"
        assert group.typer_instance is not None
        callbacks = [c.callback for c in group.typer_instance.registered_commands]
        defined[group.name] = next(c.__module__ for c in callbacks if c is not None)
    assert defined == {name: f"archami.cli.{entry.module}" for name, entry in COMMANDS.items()}
