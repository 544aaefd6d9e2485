"""Watch a guest's serial console while waiting for SSH: a boot that can no longer reach SSH ends now.

Under TCG a boot that panicked or fell into emergency mode would otherwise be waited for until the boot
timeout (10-15 minutes of CI time each). Only states systemd and the kernel never leave on their own are
fatal here; everything else the console says is judged by the health checks after login.
"""

from __future__ import annotations

import re
from pathlib import Path

FATAL = (
    ("a kernel panic", re.compile(rb"Kernel panic - not syncing[^\r\n]*")),
    ("emergency mode", re.compile(rb"You are in emergency mode|Welcome to emergency mode")),
    ("rescue mode", re.compile(rb"You are in rescue mode")),
)
_CARRY = 256  # bytes kept from the previous read: a message split across two reads is still found


class ConsoleWatch:
    """Reads only what the console added since the last look."""

    def __init__(self, serial_log: Path) -> None:
        self.serial_log = serial_log
        self._offset = 0
        self._tail = b""
        self.fatal: str | None = None

    def check(self) -> str | None:
        """The fatal state the console has shown so far ('a kernel panic: Kernel panic - not syncing: …')."""
        if self.fatal is not None:
            return self.fatal
        try:
            with self.serial_log.open("rb") as console:
                console.seek(self._offset)
                new = console.read()
        except FileNotFoundError:
            return None
        self._offset += len(new)
        text = self._tail + new
        for what, pattern in FATAL:
            found = pattern.search(text)
            if found:
                self.fatal = f"{what}: {found.group(0).decode(errors='replace').strip()}"
                return self.fatal
        self._tail = text[-_CARRY:]
        return None
