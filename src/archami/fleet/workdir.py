"""Each run's local directory (keys, overlays, serial logs): /tmp/archami-fleet/RUN_ID, owned by one pid.

A run killed with SIGKILL cannot remove its directory; the next run sweeps every directory whose owner is
gone, and `archami fleet --cleanup RUN_ID` removes one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from archami.errors import ArchamiError

OWNER_FILE = "owner.pid"
DEFAULT_WORK_ROOT = Path(tempfile.gettempdir()) / "archami-fleet"


def new_run_id() -> str:
    """'fleet-20261201-0822-3fa9c1': sortable, and short enough for EC2 names and Unix socket paths."""
    return f"fleet-{datetime.now(UTC):%Y%m%d-%H%M}-{secrets.token_hex(3)}"


def run_dir(work_root: Path, run_id: str) -> Path:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise ArchamiError(f"{run_id!r} is not a fleet run id")
    return work_root / run_id


def create_run_dir(work_root: Path, run_id: str) -> Path:
    work_root.mkdir(parents=True, exist_ok=True)
    sweep_stale_runs(work_root)
    directory = run_dir(work_root, run_id)
    directory.mkdir(mode=0o700)
    (directory / OWNER_FILE).write_text(str(os.getpid()))
    return directory


def owner_alive(directory: Path) -> bool:
    try:
        pid = int((directory / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_runs(work_root: Path) -> list[str]:
    """Remove run directories whose archami process is gone; their run ids."""
    removed = []
    if work_root.is_dir():
        for directory in sorted(work_root.iterdir()):
            if directory.is_dir() and not owner_alive(directory):
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory.name)
    return removed


def remove_run_dir(work_root: Path, run_id: str) -> list[str]:
    directory = run_dir(work_root, run_id)
    if not directory.exists():
        return []
    if owner_alive(directory):
        raise ArchamiError(f"run {run_id} is still running (pid in {directory / OWNER_FILE})")
    shutil.rmtree(directory, ignore_errors=True)
    return [str(directory)]
