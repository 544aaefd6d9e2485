"""Run host tools for the build: every command and its output go to the build log, failures become
ArchamiError, and an interrupted build takes its child processes down with it.

Each tool runs in its own process group so Ctrl-C / SIGTERM of archami can stop the whole tree (mmdebstrap
starts apt, dpkg, chroot'ed maintainer scripts...). Tools that run *inside* the image root do so in a
private mount namespace (`unshare --mount --pid --fork`): the /proc and /dev mounts they need vanish with
the namespace, so no exit path -- not even SIGKILL of archami -- can leave a mount behind.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from archami.errors import ArchamiError

_GRACE_SECONDS = 15.0


class CommandError(ArchamiError):
    """A host tool failed; the message names it and quotes the end of its output."""


class BuildInterrupted(ArchamiError):
    exit_code = 130


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL if archami dies, even by SIGKILL (no finally runs then)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, _GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(
    args: Sequence[str | Path],
    log: logging.Logger,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
    capture: bool = False,
    check: bool = True,
) -> str:
    """Run a command; its output is logged line by line (and returned when `capture`)."""
    argv = [str(a) for a in args]
    log.info("$ %s", shlex.join(argv))
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if not capture else subprocess.PIPE,
        text=True,
        errors="replace",
        env=full_env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # the build runs its tools from one thread, so preexec_fn is safe
    )
    lines: list[str] = []
    errors: list[str] = []
    try:
        if input_text is not None:
            assert proc.stdin is not None
            proc.stdin.write(input_text)
            proc.stdin.close()
        err_thread = None
        if capture:
            assert proc.stderr is not None
            stderr = proc.stderr

            def drain() -> None:
                for line in stderr:
                    errors.append(line.rstrip("\n"))
                    log.info("  %s", line.rstrip("\n"))

            err_thread = threading.Thread(target=drain, daemon=True)
            err_thread.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if not capture:
                log.info("  %s", line.rstrip("\n"))
        code = proc.wait()
        if err_thread is not None:
            err_thread.join()
    except BaseException:
        _stop_group(proc)
        raise
    if check and code != 0:
        tail = (errors if capture else [x.rstrip("\n") for x in lines])[-5:]
        detail = " | ".join(t.strip() for t in tail if t.strip())
        raise CommandError(f"{Path(argv[0]).name} failed (exit {code}): {detail or 'no output'}")
    return "".join(lines)


# Mount /proc and bind /dev inside a private mount namespace, then chroot. `$0` is the root.
_IN_ROOT = (
    'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && '
    'mount -t tmpfs tmpfs "$0/run" && mount -t tmpfs tmpfs "$0/tmp" && exec chroot "$0" "$@"'
)


def run_in_root(
    root: Path,
    args: Sequence[str],
    log: logging.Logger,
    *,
    capture: bool = False,
    input_text: str | None = None,
    check: bool = True,
) -> str:
    """Run a command inside the image root (the image's own tools), in a throwaway mount namespace."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
    argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
            "sh", "-c", _IN_ROOT, str(root), *args]
    return run(argv, log, env=env, capture=capture, input_text=input_text, check=check)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into BuildInterrupted so `finally` clean-ups run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise BuildInterrupted("build interrupted by SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
