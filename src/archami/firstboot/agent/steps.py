"""Running named steps: each one's outcome is logged and kept for the status file; one failing step does
not stop the others (a broken mirror list must not cost the user their SSH key)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .files import log


class Steps:
    def __init__(self) -> None:
        self.results: dict[str, str] = {}
        self.seconds: dict[str, float] = {}  # wall time per step, for the status file (slow boots explained)
        self.ok = True
        self.started = time.monotonic()

    def run(self, name: str, action: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            outcome = action()
        except Exception as exc:
            self.fail(name, f"{type(exc).__name__}: {exc}")
            return False
        finally:
            self.seconds[name] = round(time.monotonic() - started, 3)
        self.results[name] = outcome
        log(f"{name}: {outcome}")
        return True

    def skip(self, name: str, reason: str) -> None:
        self.results[name] = f"skipped: {reason}"

    def fail(self, name: str, reason: str) -> None:
        self.ok = False
        self.results[name] = f"failed: {reason}"
        log(f"{name}: FAILED: {reason}")
