"""Where a command writes. With `--json`, stdout holds exactly one JSON document (scripts parse it whole), so
progress, logs and notes go to stderr; without, tables and progress share the terminal as before."""

from __future__ import annotations

import json

from rich.console import Console

from archami.cli.app import console, err_console


def progress_console(as_json: bool) -> Console:
    """The console for progress, spinners and log lines: stderr with --json, else the normal output."""
    return err_console if as_json else console


def print_json(document: object) -> None:
    """The one JSON document of a command, on stdout (flushed: a long-running command prints it first)."""
    print(json.dumps(document, indent=2), flush=True)
