"""The Typer application every command module registers on, and the group that loads those modules lazily.

Start-up is what every command pays, so this module imports Typer, a Rich console and the command table
(`commands.py`) and nothing else; `archami --help` lists the table without importing a command module.
"""

from __future__ import annotations

import importlib
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.main import get_command_from_info, get_command_name, get_group_from_info

from archami.cli.commands import COMMANDS

if TYPE_CHECKING:
    from typer import _click as click  # Typer (0.29+) vendors click: its commands are these classes


class LazyGroup(TyperGroup):
    """Lists every command in COMMANDS; imports a command's module the first time that command is resolved."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.suggest_commands = False  # Typer would suggest from loaded commands only: see resolve_command
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        unlisted = [name for name in self.commands if name not in COMMANDS]
        return [*COMMANDS, *unlisted]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is not None and self._listing:
            return TyperCommand(cmd_name, short_help=entry.help, rich_help_panel=entry.panel)
        if cmd_name not in self.commands and entry is not None:
            command = load_command(cmd_name, entry.module)
            if command is not None:
                self.commands[cmd_name] = command
        return self.commands.get(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing needs each command's name and one-line help, both in COMMANDS: no module is imported.
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            matches = get_close_matches(name, self.list_commands(ctx))
            hint = f" Did you mean {', '.join(map(repr, matches))}?" if matches else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)


def load_command(name: str, module: str) -> click.Command | None:
    """Import archami.cli.MODULE (it registers its commands on `app`) and build the click command NAME."""
    importlib.import_module(f"archami.cli.{module}")
    for info in app.registered_commands:
        if info.callback is not None and (info.name or get_command_name(info.callback.__name__)) == name:
            return get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode
            )
    for group_info in app.registered_groups:
        if group_info.name == name:
            return get_group_from_info(
                group_info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
    return None


_option_type = TyperOption.display_type_rich


def _type_unless_flag(option: TyperOption, ctx: click.Context) -> str | None:
    """Typer's rich help prints flags as `--json <bool>`, as if they took a value; its plain help does not."""
    return None if option.is_flag else _option_type(option, ctx)


# One patch here instead of a metavar on every flag of every command module (and on every --help).
TyperOption.display_type_rich = _type_unless_flag  # type: ignore[method-assign, assignment]

app = typer.Typer(
    name="archami",
    cls=LazyGroup,
    help="Build, boot-test, publish and release Arch Linux and Debian machine images for Amazon EC2.",
    epilog="One image, step by step: validate, plan, build, audit, boot, publish; or all variants at once: release. "
    "`archami COMMAND --help` shows a command's options.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    # A callback makes Typer build a group even before any command module has registered a command.
    pass


console = Console()
err_console = Console(stderr=True)
