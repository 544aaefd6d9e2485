"""The one top-level handler: how any failure of a command reaches the user.

- an ArchamiError (something the user can act on) is one red line per problem, and its exit code;
- a usage error (a bad option or argument) is Click's message, exit 2;
- Ctrl-C is "interrupted", exit 130;
- anything else is a bug: one line naming it and a log file holding the traceback (exit 70, EX_SOFTWARE);
  `--debug` anywhere on the command line (or ARCHAMI_DEBUG=1) prints the traceback too.

With `--json` on the command line every one of these is instead ONE JSON object on stdout, where scripts read
(the exit codes stay; a bug also keeps its line on stderr):

    {"error": {"file": ..., "key": ..., "reason": ...}}

`file` is the file at fault (a definition, or a file named on the command line), else null; `key` the
definition key (`disk.size`) or, for a usage error, the option or argument (`--out`, `FILE`), else null;
`reason` one sentence. A definition with several problems adds `"problems": [{"file", "key", "line",
"reason"}, ...]` beside `error` (the first of them). The entry point calls `run(app)`.
"""

from __future__ import annotations

import json
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
from typer._click.exceptions import ClickException, NoSuchOption

from archami.errors import ArchamiError, ConfigError

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


def _usage_key(exc: ClickException) -> str | None:
    """The option or argument a usage error is about: its long name (`--out`) or metavar (`FILE`)."""
    if isinstance(exc, NoSuchOption):
        return exc.option_name
    param = getattr(exc, "param", None)
    if param is None:
        return None
    opts: list[str] = [str(o) for o in getattr(param, "opts", []) if str(o).startswith("--")]
    if opts and getattr(param, "param_type_name", "") == "option":
        return max(opts, key=len)
    name = getattr(param, "metavar", None) or str(getattr(param, "name", None) or "").upper()
    return str(name) if name else None


def error_document(exc: BaseException, reason: str | None = None) -> dict[str, object]:
    """The JSON object an error is with --json (module docstring)."""
    file: str | None = None
    key: str | None = None
    if isinstance(exc, ConfigError):
        file, key, text = exc.file, exc.key or None, exc.reason
    elif isinstance(exc, ArchamiError):
        text = " ".join(message_lines(exc))
    elif isinstance(exc, ClickException):
        key, text = _usage_key(exc), exc.format_message()
        file = getattr(exc, "file", None)
    else:
        text = str(exc) or type(exc).__name__
    document: dict[str, object] = {"error": {"file": file, "key": key, "reason": reason or text}}
    problems = getattr(exc, "problems", None)
    if isinstance(exc, ConfigError) and isinstance(problems, list):
        document["problems"] = [
            {"file": exc.file, "key": p.key or None, "line": p.line, "reason": p.reason} for p in problems
        ]
    return document


def _print_json(document: dict[str, object]) -> None:
    print(json.dumps(document), flush=True)


def report(exc: BaseException, argv: list[str], debug: bool, console: Console, as_json: bool = False) -> int:
    """Print what went wrong and return the exit code."""
    if isinstance(exc, ArchamiError | ClickException) and as_json:
        _print_json(error_document(exc))
        return exc.exit_code
    if isinstance(exc, ArchamiError):
        for line in message_lines(exc):
            console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        if as_json:
            _print_json(error_document(exc, "interrupted"))
        else:
            console.print("[bold red]interrupted[/]")
        return EXIT_INTERRUPTED
    if isinstance(exc, ClickException):  # only reached without --json when a caller ran Click non-standalone
        exc.show()
        return exc.exit_code
    log = write_crash_log(exc, argv)
    if debug:
        console.print(escape("".join(traceback.format_exception(exc))), highlight=False, soft_wrap=True)
    summary = " ".join(str(exc).split())[:300] or "(no message)"
    where = f"traceback in {log}" if log else "no log could be written"
    line = f"unexpected {type(exc).__name__}: {summary} ({where}; {DEBUG_FLAG} prints it; this is a bug in archami)"
    console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    if as_json:
        _print_json(error_document(exc, line))
    return EXIT_BUG


def run(app: Callable[..., object], console: Console | None = None) -> NoReturn:
    """Run the Typer app with the top-level handler around it; never returns. With `--json` on the command
    line Click runs non-standalone, so its usage errors reach `report` and become JSON too."""
    argv = sys.argv
    debug = take_debug_flag(argv) or os.environ.get(DEBUG_ENV) == "1"
    as_json = wants_json(argv)
    console = console or Console(stderr=True)
    try:
        result = app(standalone_mode=not as_json)
    except SystemExit:
        raise
    except BaseException as exc:
        sys.exit(report(exc, argv, debug, console, as_json))
    # Non-standalone, Click returns the exit code of a typer.Exit (or --help's 0) instead of exiting; Typer
    # turns Ctrl-C into exit code 130 there, which still owes stdout its JSON object.
    code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    if as_json and code == EXIT_INTERRUPTED:
        _print_json(error_document(KeyboardInterrupt(), "interrupted"))
    sys.exit(code)
