"""Atomic file writes and the agent's log. Every file the agent writes goes through write_atomic."""

from __future__ import annotations

import os
import sys
import time


def log(message: str) -> None:
    """One line to stderr: journald stamps and stores it when the agent runs as a unit."""
    sys.stderr.write(f"archami-firstboot: {message}\n")
    sys.stderr.flush()


def write_atomic(
    path: str, data: bytes, mode: int = 0o644, uid: int | None = None, gid: int | None = None
) -> None:
    """Write via a temp file in the same directory + fsync + rename: readers see the old file or the new.

    A crash leaves at worst a dot-temp file beside the target, never a partial target.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.archami-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fchmod(fd, mode)  # the umask must not loosen or tighten what the caller asked for
        if uid is not None and gid is not None:
            os.fchown(fd, uid, gid)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:  # noqa: SIM105  (contextlib is one more import on every boot)
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    # The rename is durable only once the directory entry is on disk (a first boot may be cut short).
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def makedirs(path: str, mode: int, uid: int | None = None, gid: int | None = None) -> None:
    """Create a directory with exactly `mode` (and owner), tightening an existing one."""
    os.makedirs(path, mode=mode, exist_ok=True)
    os.chmod(path, mode)
    if uid is not None and gid is not None:
        os.chown(path, uid, gid)


def remove(path: str) -> None:
    try:  # noqa: SIM105  (contextlib is one more import on every boot)
        os.unlink(path)
    except FileNotFoundError:
        pass


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
