"""Command line: thin. Each command parses, calls one stage, and renders (a Rich table, or --json).

One module per stage (`*_cmds.py`) registers its commands on `app`; `commands.py` lists them, so a module is
imported only when one of its commands is used (`archami --help` and `archami validate` stay fast).
"""

from __future__ import annotations

import json
import sys

from archami.cli.app import app, err_console
from archami.errors import ArchamiError, ConfigError


def error_json(exc: ArchamiError) -> str:
    """`{"error": {"file", "key", "reason"}}`: file and key are null unless a definition is at fault."""
    if isinstance(exc, ConfigError):
        fields = {"file": exc.file, "key": exc.key or None, "reason": exc.reason}
    else:
        fields = {"file": None, "key": None, "reason": str(exc)}
    return json.dumps({"error": fields})


def main() -> None:
    """Entry point: an ArchamiError becomes an exit code and one line, never a traceback.

    The line is red text on stderr, or with --json the `error_json` object on stdout, where scripts read.
    """
    try:
        app(prog_name="archami")
    except ArchamiError as exc:
        args = sys.argv[1:]
        if "--json" in (args[: args.index("--")] if "--" in args else args):
            print(error_json(exc))
        else:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)


__all__ = ["app", "main"]
