"""Where a command writes. With `--json`, stdout holds exactly one JSON document (scripts parse it whole), so
progress, logs and notes go to stderr; without, tables and progress share the terminal as before."""

from __future__ import annotations

import json
import time

from rich.console import Console
from rich.status import Status

from archami.cli.app import console, err_console


def progress_console(as_json: bool) -> Console:
    """The console for progress, spinners and log lines: stderr with --json, else the normal output."""
    return err_console if as_json else console


def print_json(document: object) -> None:
    """The one JSON document of a command, on stdout (flushed: a long-running command prints it first)."""
    print(json.dumps(document, indent=2), flush=True)


class StageLines:
    """A long step's stages as they happen: on a terminal a live status line plus one line per finished
    stage, elsewhere (CI logs, pipes) plain lines stamped with the seconds since the start."""

    def __init__(self, out: Console, what: str) -> None:
        self.out = out
        self.what = what
        self.started = time.monotonic()
        self._status: Status | None = None

    def __enter__(self) -> StageLines:
        if self.out.is_terminal:
            self._status = self.out.status(f"{self.what} ...")
            self._status.start()
        else:
            self.out.print(f"[{0.0:6.1f}s] {self.what}", highlight=False, markup=False)
        return self

    def __call__(self, stage: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f}s] {stage}"
        self.out.print(line, highlight=False, markup=False)
        if self._status is not None:
            self._status.update(f"{self.what}: {stage} ...")

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
