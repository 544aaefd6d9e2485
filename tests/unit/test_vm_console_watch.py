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


FIXTURES = Path(__file__).parent / "boot_health"


def test_stages_are_reported_once_as_the_console_shows_them(tmp_path: Path) -> None:
    healthy = (FIXTURES / "console-trixie-healthy.log").read_bytes()
    log = tmp_path / "serial.log"
    cut = healthy.index(b"Booting in blind mode")  # after GRUB, before the login prompt
    log.write_bytes(healthy[:cut])
    watch = ConsoleWatch(log)
    assert watch.check() is None and watch.new_stages() == ["boot loader"]
    with log.open("ab") as console:
        console.write(healthy[cut:])
    assert watch.check() is None
    # a `quiet` kernel prints neither its banner nor systemd's: those stages are skipped, not invented
    assert watch.new_stages() == ["login prompt"] and watch.new_stages() == []
    assert watch.stages == ["boot loader", "login prompt"]


def test_the_initramfs_giving_up_on_the_root_is_fatal(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes((FIXTURES / "console-emergency.log").read_bytes())
    assert ConsoleWatch(log).check() == "an initramfs shell: Dropping to a shell!"


def test_a_recorded_panic_is_fatal(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes((FIXTURES / "console-kernel-panic.log").read_bytes())
    fatal = ConsoleWatch(log).check()
    assert fatal is not None and fatal.startswith("a kernel panic: Kernel panic - not syncing")
