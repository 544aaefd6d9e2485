"""Command line: thin. Each command parses, calls one stage, and renders (a Rich table, or --json).

One module per stage (`*_cmds.py`) registers its commands on `app`; `commands.py` lists them, so a module is
imported only when one of its commands is used (`archami --help` and `archami validate` stay fast).
"""

from __future__ import annotations

import sys

from archami.cli.app import app, err_console
from archami.errors import ArchamiError


def main() -> None:
    """Entry point: an ArchamiError becomes one red line and an exit code, never a traceback."""
    try:
        app(prog_name="archami")
    except ArchamiError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)


__all__ = ["app", "main"]
