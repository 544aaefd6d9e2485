"""Running host tools: output logged, failures as one clear error, SIGTERM stops the whole tree."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from archami.runner import CommandError, run


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _logger() -> tuple[logging.Logger, _Collect]:
    log = logging.getLogger(f"t{time.monotonic_ns()}")
    handler = _Collect()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log, handler


def test_command_and_output_are_logged() -> None:
    log, seen = _logger()
    out = run(["sh", "-c", "echo one; echo two >&2"], log)
    assert "one" in out and "two" in out
    assert seen.lines[0] == "$ sh -c 'echo one; echo two >&2'"
    assert "  one" in seen.lines and "  two" in seen.lines


def test_capture_keeps_stdout_apart() -> None:
    log, _ = _logger()
    assert run(["sh", "-c", "echo data; echo noise >&2"], log, capture=True) == "data\n"


def test_failure_names_the_tool_and_quotes_its_last_words() -> None:
    log, _ = _logger()
    with pytest.raises(CommandError, match=r"sh failed \(exit 3\): .*disk full"):
        run(["sh", "-c", "echo working; echo 'E: disk full' >&2; exit 3"], log)


def test_input_is_fed() -> None:
    log, _ = _logger()
    assert run(["cat"], log, input_text="abc", capture=True) == "abc"


def test_sigterm_stops_the_tool_and_its_children(tmp_path: Path) -> None:
    """A build process receiving SIGTERM ends its tool's whole process group, then exits with an error."""
    pidfile = tmp_path / "grandchild.pid"
    script = textwrap.dedent(f"""
        import logging, sys
        from archami.runner import run, sigterm_interrupts, BuildInterrupted
        try:
            with sigterm_interrupts():
                run(["sh", "-c", "sleep 300 & echo $! > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; wait"],
                    logging.getLogger("x"))
        except BuildInterrupted:
            sys.exit(42)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline, "the tool never started"
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 42
    deadline = time.monotonic() + 10
    while _alive(grandchild):
        cmdline = Path(f"/proc/{grandchild}/cmdline").read_bytes()
        assert time.monotonic() < deadline, f"the tool's child {grandchild} {cmdline!r} survived"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
