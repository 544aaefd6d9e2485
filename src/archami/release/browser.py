"""Headless Chromium (Debian's `chromium`) to look at the release site the way a user's browser does:
the DOM after parsing (`--dump-dom`) and a screenshot (`--screenshot`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from archami.errors import ArchamiError, ToolMissingError
from archami.hosttools import install_hint
from archami.runner import run_bytes

# Flags that keep a headless run local and quiet: no sandbox (we run as root), no GPU, no first-run
# setup, and no background traffic (updates, sync, component downloads).
_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio",
]
PHONE_WINDOW = (412, 915)  # CSS pixels of a common phone: the page must read well at this width
DESKTOP_WINDOW = (1280, 900)


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise ToolMissingError(f"chromium is not installed ({install_hint('chromium')})")


def _run(args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="archami-chromium-") as profile:
        cmd = [chromium_binary(), *_FLAGS, f"--user-data-dir={profile}", *args]
        done = run_bytes(cmd, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise ArchamiError(f"chromium failed (exit {done.returncode}): {tail}")
    return done.stdout.decode(errors="replace")


def dump_dom(page: Path, timeout: float = 60, flags: Sequence[str] = ()) -> str:
    """The page's DOM as Chromium serialises it after loading (scripts run, markup repaired)."""
    return _run([*flags, "--dump-dom", page.resolve().as_uri()], timeout)


def screenshot(page: Path, out: Path, window: tuple[int, int] = DESKTOP_WINDOW, timeout: float = 60) -> Path:
    """Save a PNG of the page at the given window size; returns its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    width, height = window
    _run([f"--screenshot={out.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()], timeout)
    if not out.is_file() or out.stat().st_size == 0:
        raise ArchamiError(f"chromium wrote no screenshot to {out}")
    return out
