"""Named step boundaries of a publish, where a test can SIGKILL the process (resume tests).

ARCHAMI_CRASH_AT=K kills the process at the K-th boundary it passes (1-based); ARCHAMI_CRASH_LOG=FILE
appends each boundary's name, so a test learns how many boundaries a full run has. Both unset: no effect.
"""

from __future__ import annotations

import os
import signal
import threading

_lock = threading.Lock()
_passed = 0


def boundary(name: str) -> None:
    global _passed
    crash_at = os.environ.get("ARCHAMI_CRASH_AT")
    log = os.environ.get("ARCHAMI_CRASH_LOG")
    if not crash_at and not log:
        return
    with _lock:
        _passed += 1
        if log:
            with open(log, "a") as f:
                f.write(f"{_passed} {name}\n")
        if crash_at and _passed == int(crash_at):
            os.kill(os.getpid(), signal.SIGKILL)
