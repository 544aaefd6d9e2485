"""The one top-level handler: how any failure of a command reaches the user.

- an ArchamiError (something the user can act on) is one red line per problem, and its exit code (with
  --json, the entry point's JSON object on stdout instead);
- Ctrl-C is "interrupted", exit 130;
- anything else is a bug: one line naming it and a log file holding the traceback (exit 70, EX_SOFTWARE);
  `--debug` anywhere on the command line (or ARCHAMI_DEBUG=1) prints the traceback too.

The entry point calls `run(app)`; usage errors (a bad option) are Click's own, exit 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape

from archami.errors import ArchamiError

DEBUG_FLAG = "--debug"
DEBUG_ENV = "ARCHAMI_DEBUG"
LOG_DIR_ENV = "ARCHAMI_LOG_DIR"
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE
EXIT_INTERRUPTED = 130


def take_debug_flag(argv: list[str]) -> bool:
    """Remove `--debug` from argv (before a `--`), returning whether it was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = DEBUG_FLAG in argv[1:end]
    argv[1:end] = [arg for arg in argv[1:end] if arg != DEBUG_FLAG]
    return found


def crash_log_dir() -> Path:
    if os.environ.get(LOG_DIR_ENV):
        return Path(os.environ[LOG_DIR_ENV])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local/state")
    return Path(state) / "archami"


def write_crash_log(exc: BaseException, argv: list[str]) -> Path | None:
    """The traceback of an unexpected error, in a file of its own (None if no file could be written)."""
    text = (f"archami {' '.join(argv[1:])}\n{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n\n"
            + "".join(traceback.format_exception(exc)))
    for directory in (crash_log_dir(), Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"archami-crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def message_lines(exc: ArchamiError) -> list[str]:
    """One line per problem (a definition with three problems gives three lines)."""
    lines = getattr(exc, "lines", None)
    if callable(lines):
        return [str(line) for line in lines()]
    text = str(exc) or type(exc).__name__
    return text.splitlines() or [text]


def wants_json(argv: list[str]) -> bool:
    args = argv[1:]
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def report(exc: BaseException, argv: list[str], debug: bool, console: Console,
           json_error: Callable[[ArchamiError], str] | None = None) -> int:
    """Print what went wrong and return the exit code."""
    if isinstance(exc, ArchamiError) and json_error is not None and wants_json(argv):
        print(json_error(exc))
        return exc.exit_code
    if isinstance(exc, ArchamiError):
        for line in message_lines(exc):
            console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        console.print("[bold red]interrupted[/]")
        return EXIT_INTERRUPTED
    log = write_crash_log(exc, argv)
    if debug:
        console.print(escape("".join(traceback.format_exception(exc))), highlight=False, soft_wrap=True)
    summary = " ".join(str(exc).split())[:300] or "(no message)"
    where = f"traceback in {log}" if log else "no log could be written"
    console.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(summary)} ({escape(where)}; "
                  f"{DEBUG_FLAG} prints it; this is a bug in archami)", highlight=False, soft_wrap=True)
    return EXIT_BUG


def run(app: Callable[[], object], console: Console | None = None,
        json_error: Callable[[ArchamiError], str] | None = None) -> NoReturn:
    """Run the Typer app with the top-level handler around it; never returns. With `--json` on the command
    line, an ArchamiError is `json_error(exc)` on stdout instead of red lines on stderr."""
    argv = sys.argv
    debug = take_debug_flag(argv) or os.environ.get(DEBUG_ENV) == "1"
    console = console or Console(stderr=True)
    try:
        app()
    except SystemExit:
        raise
    except BaseException as exc:
        sys.exit(report(exc, argv, debug, console, json_error))
    sys.exit(0)
