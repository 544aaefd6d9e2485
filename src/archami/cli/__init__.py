"""Command line: thin. Each command parses, calls one stage, and renders (a Rich table, or --json).

One module per stage (`*_cmds.py`) registers its commands on `app`; `commands.py` lists them, so a module is
imported only when one of its commands is used (`archami --help` and `archami validate` stay fast).
"""

from __future__ import annotations

from typing import Any

from archami.cli.app import app, err_console


def main() -> None:
    """Entry point: an ArchamiError becomes an exit code and one line (one per problem), never a traceback; any
    other exception one line and a log file holding the traceback (archami.cli.errors).

    The line is red text on stderr, or with --json a `{"error": {"file", "key", "reason"}}` object on stdout,
    where scripts read (archami.cli.errors documents its fields).
    """
    from archami.cli.errors import run

    def archami(**options: Any) -> object:
        return app(prog_name="archami", **options)

    run(archami, err_console)


__all__ = ["app", "main"]
