"""The Typer application object every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="archami",
    help="Build, boot-test, publish and release Arch Linux and Debian machine images for Amazon EC2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
