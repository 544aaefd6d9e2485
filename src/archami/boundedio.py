"""Bounded reading of input files: only regular files, only up to a size limit, never blocking.

Every file archami reads because a user named it (definitions, manifests, records, states, measurement
files, keys) goes through `read_bounded`. A FIFO, a device (/dev/zero), a directory or a file over the limit
is refused before a byte is read, so no input can make archami hang or grow without bound: opening uses
O_NONBLOCK (opening a FIFO never waits for a writer) and the size is checked on the opened file (fstat), then
again while reading, in case the file grows. `time_limit` bounds the time spent parsing what was read.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archami.errors import ArchamiError

MiB = 1024**2
DEFINITION_LIMIT = 1 * MiB  # an image definition is a few KiB
ARTIFACT_LIMIT = 64 * MiB  # manifests list packages; release records and states grow with variants


class InputFileError(ArchamiError):
    """A file given as input cannot be read as one: missing, special, too large."""

    exit_code = 2


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_bounded(path: Path | str, limit: int, what: str = "file") -> bytes:
    """The whole content of regular file `path`, at most `limit` bytes; InputFileError otherwise."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"{path}: the {what} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise InputFileError(f"{path}: the {what} is {info.st_size:,} bytes, more than the {limit:,} allowed")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 * MiB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise InputFileError(f"{path}: the {what} grew past the {limit:,} bytes allowed while it was read")
        return b"".join(chunks)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text_bounded(path: Path | str, limit: int, what: str = "file") -> str:
    """Like read_bounded, decoded as UTF-8 (a leading byte-order mark is dropped)."""
    data = read_bounded(path, limit, what)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from None


def check_regular_file(path: Path | str, what: str = "file", limit: int | None = None) -> Path:
    """`path` names an existing regular file (within `limit` bytes): checked without opening it."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot use the {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(f"{path}: the {what} is {_kind(info.st_mode)}, not a regular file")
    if limit is not None and info.st_size > limit:
        raise InputFileError(f"{path}: the {what} is {info.st_size:,} bytes, more than the {limit:,} allowed")
    return path


class InputTimeout(InputFileError):
    """Reading an input took longer than any real input could."""


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Stop the block with InputTimeout after `seconds` of wall time.

    Parsing is where a hostile input costs time (tomllib is quadratic in the parts of a dotted key: 10,000
    parts take seconds), and no size limit bounds that. The limit is a SIGALRM timer, so it applies in the
    main thread only (the CLI's); elsewhere the block runs unbounded. A timer already running (a test
    runner's) is re-armed with what it had left."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    started = time.monotonic()

    def expired(_signum: int, _frame: object) -> None:
        raise InputTimeout(f"reading the {what} took more than {seconds:g} s: it is not a plausible {what}")

    previous = signal.signal(signal.SIGALRM, expired)
    outer, _interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001))
