"""The console watch ends a boot wait on states a guest never leaves, reading only what is new."""

from __future__ import annotations

from pathlib import Path

from archami.vm.console_watch import ConsoleWatch

PANIC = (b"[    2.612345] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n"
         b"[    2.613000] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.0-1-amd64 #1\r\n")


def test_a_panic_split_across_two_reads_is_found(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"[    0.000000] Linux version 6.12.0\r\n" + PANIC[:20])
    watch = ConsoleWatch(log)
    assert watch.check() is None
    with log.open("ab") as console:
        console.write(PANIC[20:])
    reason = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    assert watch.check() == f"a kernel panic: {reason}"
    assert watch.fatal is not None and watch.check() == watch.fatal  # stays fatal


def test_emergency_mode_is_fatal_but_unit_names_are_not(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"[  OK  ] Reached target emergency.target\r\n         Starting rescue.service\r\n")
    watch = ConsoleWatch(log)
    assert watch.check() is None
    with log.open("ab") as console:
        console.write(b"You are in emergency mode. After logging in, type \"journalctl -xb\" to view\r\n")
    assert watch.check() == "emergency mode: You are in emergency mode"


def test_no_console_yet(tmp_path: Path) -> None:
    assert ConsoleWatch(tmp_path / "missing.log").check() is None
