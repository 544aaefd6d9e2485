"""What the fleet tests check after a run: no QEMU or ssh of the run alive, no overlay, no port listening."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARCHAMI = [sys.executable, "-c", "import sys; sys.argv[0] = 'archami'; from archami.cli import main; main()"]


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), **extra}


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain `text` (e.g. a run id in an overlay path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def port_listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def wait_port_closed(address: str, timeout: float = 30.0) -> bool:
    """True once nothing accepts on `address` (a process killed a moment ago may still hold its socket)."""
    deadline = time.monotonic() + timeout
    while port_listening(address):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def wait_gone(run_id: str, timeout: float = 30.0) -> list[str]:
    """Processes of the run still alive after `timeout` (PDEATHSIG acts at once; reaping takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_mentioning(run_id)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def overlays_under(directory: Path) -> list[Path]:
    return list(directory.rglob("*.qcow2")) if directory.exists() else []


def read_report(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data
