"""`archami doctor [COMMAND]`: the host tools (all, or one command's) and the host checks that command needs.

A required tool missing or a failed check exits 3; an optional tool missing or a warning does not. Names are
never cut: wide terminals get a table, narrow ones (under 100 columns) one line per tool.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from archami.cli.app import app, console, err_console
from archami.cli.commands import COMMANDS
from archami.hostchecks import CACHE_DIR, CheckResult, checks_for
from archami.hosttools import ToolStatus, check_tools, install_commands

EXIT_MISSING = 3
TABLE_MIN_WIDTH = 100
INDENT = 9  # under the status word
_TOPICS = (*COMMANDS, "tests")
_STYLE = {"ok": "green", "warning": "yellow", "failed": "red", "missing": "red", "absent": "yellow"}


def _topic(value: str | None) -> str | None:
    if value is not None and value not in _TOPICS:
        raise typer.BadParameter(f"{value!r} is not an archami command (one of: {', '.join(_TOPICS)})")
    return value


def _tool_state(status: ToolStatus) -> str:
    if status.found:
        return "ok"
    return "missing" if status.tool.required else "absent"


def doctor_report(command: str | None, cache: Path = CACHE_DIR) -> dict[str, object]:
    """The whole report as plain data: `--json` prints it, the tables are drawn from it."""
    tools = check_tools(command)
    checks: list[CheckResult] = [check() for check in checks_for(command, cache)]
    missing = [s.tool for s in tools if _tool_state(s) == "missing"]
    absent = [s.tool for s in tools if _tool_state(s) == "absent"]
    return {
        "command": command,
        "ok": not missing and all(c.status != "failed" for c in checks),
        "tools": [
            {"name": s.tool.name, "purpose": s.tool.purpose, "status": _tool_state(s), "required": s.tool.required,
             "found": s.found, "debian": s.tool.debian, "arch": s.tool.arch}
            for s in tools
        ],
        "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in checks],
        "install": install_commands(missing) if missing else [],
        "install_optional": install_commands(absent) if absent else [],
    }


def _print_indented(text: str) -> None:
    """Wrapped under the status column, never back at column 0 (a narrow terminal); no padding to the width."""
    for line in textwrap.wrap(text, max(20, console.width - INDENT), break_on_hyphens=False):
        console.print(" " * INDENT + escape(line), highlight=False, soft_wrap=True)


def _show_tools(tools: list[dict[str, object]], title: str) -> None:
    if not tools:
        console.print(f"{title}: none", highlight=False)
        return
    if console.width >= TABLE_MIN_WIDTH:
        # Only the purpose wraps: names and packages stay whole (paths are in --json).
        table = Table(title=title)
        for column in ("tool", "status", "Debian/Ubuntu", "Arch"):
            table.add_column(column, no_wrap=True)
        table.add_column("for", ratio=1)
        for t in tools:
            state = str(t["status"])
            table.add_row(escape(str(t["name"])), f"[{_STYLE[state]}]{state}[/]", str(t["debian"]), str(t["arch"]),
                          escape(str(t["purpose"])))
        console.print(table)
        return
    console.print(f"[bold]{title}[/]")
    for t in tools:
        state = str(t["status"])
        console.print(f"[{_STYLE[state]}]{state:8}[/] [bold]{escape(str(t['name']))}[/]", highlight=False)
        _print_indented(f"{t['purpose']}; {t['found'] or 'package ' + str(t['debian'])}")


def _show_check(check: dict[str, str]) -> None:
    console.print(f"[{_STYLE[check['status']]}]{check['status']:8}[/] [bold]{check['name']}[/]", highlight=False)
    _print_indented(check["detail"])


@app.command()
def doctor(
    command: Annotated[
        str | None,
        typer.Argument(metavar="COMMAND", callback=_topic,
                       help="Check only what this command needs (e.g. build, boot, publish, kernel, repo, tests)."),
    ] = None,
    cache: Annotated[
        Path, typer.Option("--cache", help="The cache directory whose free disk is checked (a build's --cache).")
    ] = CACHE_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List the host tools archami (or one command) needs, whether each is present and how to install it; check
    root, /dev/kvm, free disk for the cache, $ARCHAMI_ARCH_MIRROR and AWS credentials where that command needs
    them. Exit 3 when a required tool is missing or a check failed.

    Example: `archami doctor boot --json`.
    """
    report = doctor_report(command, cache)
    if as_json:
        print(json.dumps(report, indent=2))
        if not report["ok"]:
            raise typer.Exit(EXIT_MISSING)
        return
    tools = report["tools"]
    assert isinstance(tools, list)
    _show_tools(tools, f"host tools for {command}" if command else "host tools")
    checks = report["checks"]
    assert isinstance(checks, list)
    for check in checks:
        _show_check(check)
    for key, heading in (("install_optional", "optional tools absent; install with:"),
                         ("install", "required tool(s) missing. Install them with:")):
        lines = report[key]
        assert isinstance(lines, list)
        if lines:
            err_console.print(("[bold red]" if key == "install" else "[yellow]") + escape(heading) + "[/]")
            for line in lines:
                err_console.print(f"  {escape(line)}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(EXIT_MISSING)
    warnings = sum(1 for c in checks if c["status"] == "warning") + sum(1 for t in tools if t["status"] == "absent")
    required = sum(1 for t in tools if t["required"])
    console.print(f"[green]ready{' for ' + command if command else ''}[/]: {required} required tool(s) present, "
                  f"{warnings} warning(s)", highlight=False)
