"""Command line: thin. Each command parses, calls one stage, and renders (a Rich table, or --json).

Command modules register themselves on `app` when imported below, one module per stage.
"""

from __future__ import annotations

import sys

from archami.cli.app import app, err_console
from archami.errors import ArchamiError

# Importing a command module registers its commands on `app`.
from archami.cli import audit_cmds  # noqa: F401  isort: skip
from archami.cli import boot_cmds  # noqa: F401  isort: skip
from archami.cli import config_cmds  # noqa: F401  isort: skip
from archami.cli import build_cmds  # noqa: F401  isort: skip
from archami.cli import imds_cmds  # noqa: F401  isort: skip
from archami.cli import mirrors_cmds  # noqa: F401  isort: skip
from archami.cli import publish_cmds  # noqa: F401  isort: skip
from archami.cli import release_cmds  # noqa: F401  isort: skip
from archami.cli import repo_cmds  # noqa: F401  isort: skip
from archami.cli import kernel_cmds  # noqa: F401  isort: skip

COMMAND_MODULES = ["config_cmds"]


def main() -> None:
    """Entry point: an ArchamiError becomes one red line and an exit code, never a traceback."""
    try:
        app()
    except ArchamiError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)


__all__ = ["app", "main"]
