"""Watch a guest's serial console while waiting for SSH: a boot that can no longer reach SSH ends now, and
the stages the console shows are reported as they happen (`archami boot`'s progress).

Under TCG a boot that panicked or fell into emergency mode would otherwise be waited for until the boot
timeout (10-15 minutes of CI time each). Only states systemd and the kernel never leave on their own are
fatal here; everything else the console says is judged by the health checks after login. The stages are
what the console happens to say (a `quiet` kernel says nothing between the boot loader and the login
prompt); where the seconds went is measured afterwards from the guest's clocks (vm/boot_phases.py).
"""

from __future__ import annotations

import re
from pathlib import Path

FATAL = (
    ("a kernel panic", re.compile(rb"Kernel panic - not syncing[^\r\n]*")),
    ("emergency mode", re.compile(rb"You are in emergency mode|Welcome to emergency mode")),
    ("rescue mode", re.compile(rb"You are in rescue mode")),
    # The initramfs gave up on the root file system: initramfs-tools' busybox shell, mkinitcpio's.
    ("an initramfs shell", re.compile(rb"Dropping to a shell!|dropped into an emergency shell")),
)
# In boot order; each is reported once, when the console first shows it (one it never shows is skipped).
STAGES = (
    ("boot loader", re.compile(rb"GNU GRUB|Welcome to GRUB|Booting `")),
    ("kernel", re.compile(rb"Linux version \d")),
    ("init", re.compile(rb"systemd\[1\]: |Run /s?bin/init as init process|Welcome to (?!GRUB)\S")),
    ("login prompt", re.compile(rb"\S login: ")),
)
_CARRY = 256  # bytes kept from the previous read: a message split across two reads is still found


class ConsoleWatch:
    """Reads only what the console added since the last look."""

    def __init__(self, serial_log: Path) -> None:
        self.serial_log = serial_log
        self._offset = 0
        self._tail = b""
        self.fatal: str | None = None
        self.stages: list[str] = []  # reached so far, in order
        self._unseen: list[str] = []
        self._last_stage = -1

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
        for index, (name, pattern) in enumerate(STAGES):
            if index > self._last_stage and pattern.search(text):
                self._last_stage = index
                self.stages.append(name)
                self._unseen.append(name)
        for what, pattern in FATAL:
            found = pattern.search(text)
            if found:
                self.fatal = f"{what}: {found.group(0).decode(errors='replace').strip()}"
                return self.fatal
        self._tail = text[-_CARRY:]
        return None

    def new_stages(self) -> list[str]:
        """Stages reached since the last call."""
        unseen, self._unseen = self._unseen, []
        return unseen
