"""The one process runner: every command archami runs on the host or in an image root goes through `run`.

Every command and its output go to the stage's log at INFO, failures become a CommandError quoting the end
of the output, a missing tool a ToolMissingError, and an interrupted build takes its child processes down
with it.

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
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from archami.errors import ArchamiError, ToolMissingError

_GRACE_SECONDS = 15.0


class CommandError(ArchamiError):
    """A host tool failed; the message names it and quotes the end of its output."""


class BuildInterrupted(ArchamiError):
    exit_code = 130


_PR_SET_PDEATHSIG = 1


# Looked up once in the parent: between fork and exec the child must do nothing but call it (another thread,
# e.g. the local IMDS server's, may hold a lock that loading a library in the child would wait for forever).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL if archami dies, even by SIGKILL (no finally runs then)."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _stop_group(proc: subprocess.Popen[Any]) -> None:
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
    what: str | None = None,
    clean_env: bool = False,
) -> str:
    """Run a command; its output is logged line by line and returned (stdout only when `capture`, which
    keeps stderr out of the result but still in the log). `what` names the command in errors; with
    `clean_env` the command sees only `env` (commands in an image root: the host's PATH means nothing there)."""
    argv = [str(a) for a in args]
    log.info("$ %s", shlex.join(argv))
    full_env = dict(env or {}) if clean_env else ({**os.environ, **env} if env else None)
    try:
        proc = _start(argv, input_text is not None, capture, full_env, cwd)
    except FileNotFoundError:
        raise _not_installed(argv[0]) from None
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
        raise CommandError(f"{what or Path(argv[0]).name} failed (exit {code}): {detail or 'no output'}")
    return "".join(lines)


@dataclass(frozen=True)
class Finished:
    """A command run for its bytes (keys, signatures, file contents): not logged line by line."""

    args: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes


def run_bytes(
    args: Sequence[str | Path], *, input_bytes: bytes | None = None, timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run a command whose output is data, not a log: own process group, killed with archami, bounded by
    `timeout` (then a CommandError). The caller judges the exit status."""
    argv = [str(a) for a in args]
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env} if env else None,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
    except FileNotFoundError:
        raise _not_installed(argv[0]) from None
    try:
        out, err = proc.communicate(input_bytes, timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        raise CommandError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from None
    except BaseException:
        _stop_group(proc)
        raise
    return Finished(argv, proc.returncode, out, err)


@dataclass(frozen=True)
class TextResult:
    """A command run for its text output (ssh probes, qemu-img info): decoded, not logged."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_text(
    args: Sequence[str | Path], *, input_text: str | None = None, timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> TextResult:
    """`run_bytes`, decoded (invalid UTF-8 replaced). A timeout is a CommandError naming the command."""
    done = run_bytes(args, input_bytes=None if input_text is None else input_text.encode(), timeout=timeout, env=env)
    return TextResult(done.args, done.returncode, done.stdout.decode(errors="replace"),
                      done.stderr.decode(errors="replace"))


def spawn(args: Sequence[str | Path], **popen: Any) -> subprocess.Popen[Any]:
    """Start a long-running or streaming command (a VM, a pipe stage) in its own process group that dies
    with archami; stop it with `stop`. `popen` are subprocess.Popen's stream and environment arguments."""
    argv = [str(a) for a in args]
    try:
        return subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent, **popen)
    except FileNotFoundError:
        raise _not_installed(argv[0]) from None


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a spawned command and its whole process group: SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is None:
        _stop_group(proc)


def _not_installed(command: str) -> ToolMissingError:
    """The error for a command that is not on this host, with how to install it (the doctor's table)."""
    from archami.hosttools import install_hint  # the table imports distro rules: only when needed

    return ToolMissingError(f"{command} is not installed ({install_hint(command)})")


def _start(
    argv: list[str], stdin: bool, capture: bool, env: dict[str, str] | None, cwd: Path | None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if not capture else subprocess.PIPE,
        text=True,
        errors="replace",
        env=env,
        cwd=cwd,
        start_new_session=True,  # its own process group: stopped whole on Ctrl-C or SIGTERM
        preexec_fn=_die_with_parent,  # async-signal-safe enough: one prctl call, looked up beforehand
    )


# In a private mount and PID namespace: mount the API filesystems into the root ($1), then exec the rest.
# The mounts vanish with the namespace and every process in it dies with its first one (--kill-child),
# however the command ends: nothing is left mounted or running on the host.
_API_MOUNTS = r"""
set -eu
root=$1; shift
mkdir -p "$root/proc" "$root/dev" "$root/sys" "$root/run" "$root/tmp"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t sysfs -o ro sysfs "$root/sys"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
exec "$@"
"""
_NAMESPACE = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child"]
# A clean environment for commands in the image.
IMAGE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
# Host settings that still reach them: the CPU model qemu-user emulates for a foreign image (archami.foreign).
_PASSED_TO_IMAGE = ("QEMU_CPU",)


def run_with_api_mounts(
    root: Path,
    args: Sequence[str | Path],
    log: logging.Logger,
    *,
    env: Mapping[str, str] | None = None,
    clean_env: bool = False,
    capture: bool = False,
    input_text: str | None = None,
    check: bool = True,
    what: str | None = None,
) -> str:
    """Run a host command that works on an image root (e.g. `pacman --root`), with the root's /proc, /dev,
    /sys, /run and /tmp mounted for the scriptlets and hooks it runs chrooted."""
    argv = [*_NAMESPACE, "sh", "-c", _API_MOUNTS, "archami-root", str(root), *(str(a) for a in args)]
    return run(argv, log, env=env, clean_env=clean_env, capture=capture, input_text=input_text, check=check,
               what=what or Path(str(args[0])).name)


def run_in_root(
    root: Path,
    args: Sequence[str],
    log: logging.Logger,
    *,
    capture: bool = False,
    input_text: str | None = None,
    check: bool = True,
    what: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a command inside the image root (the image's own tools), in a throwaway mount namespace. `env`:
    variables the command gets besides IMAGE_ENV (no `env` binary needed in the root)."""
    env = {**IMAGE_ENV, **{k: os.environ[k] for k in _PASSED_TO_IMAGE if k in os.environ}, **(env or {})}
    return run_with_api_mounts(root, ["chroot", str(root), *args], log, env=env, clean_env=True,
                               capture=capture, input_text=input_text, check=check, what=what or args[0])


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
