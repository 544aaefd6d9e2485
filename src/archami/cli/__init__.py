"""Command line: thin. Each command parses, calls one stage, and renders (a Rich table, or --json).

One module per stage (`*_cmds.py`) registers its commands on `app`; `commands.py` lists them, so a module is
imported only when one of its commands is used (`archami --help` and `archami validate` stay fast).
"""

from __future__ import annotations

import json

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
    """Entry point: an ArchamiError becomes an exit code and one line (one per problem), never a traceback; any
    other exception one line and a log file holding the traceback (archami.cli.errors).

    The line is red text on stderr, or with --json the `error_json` object on stdout, where scripts read.
    """
    from archami.cli.errors import run

    run(lambda: app(prog_name="archami"), err_console, json_error=error_json)


__all__ = ["app", "main"]
