"""A held SSH session: a remote command that keeps the connection open, watched until the connection ends.

The reboot experiment needs what the OpenSSH client saw when the connection ended: its exit code, its
last words on stderr and when it happened. `ssh_argv`'s options are kept, with LogLevel=INFO put in front
(ssh uses the first value it is given for an option; it reports a dead server, 'Timeout, server ... not
responding.', at INFO, below ERROR).

By default the client sends nothing on its own (no ServerAlive probes), like the interactive session of
the seed's experiment: a connection the server never closed then stays open, silent, which is the failure
being counted. With probes, QEMU's user-mode network turns the rebooted guest's reset into a plain close,
so a failure would look like an orderly EOF a few tens of seconds late.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, PIPE, Popen  # processes start via archami.runner

from archami.runner import spawn
from archami.vm.ssh import ssh_argv


def held_session_argv(
    host: str, port: int, key: Path, command: str, user: str = "root",
    alive_interval: int = 0, alive_count: int = 3,
) -> list[str]:
    """ssh argv; alive_interval > 0 turns on the client's keepalive probes (ServerAliveInterval)."""
    argv = ssh_argv(port, key, command, user, host)
    extra = ["-o", "LogLevel=INFO"]
    if alive_interval > 0:
        extra += ["-o", f"ServerAliveInterval={alive_interval}", "-o", f"ServerAliveCountMax={alive_count}"]
    return [argv[0], *extra, *argv[1:]]


@dataclass(frozen=True)
class SessionEnd:
    """How the ssh client ended. exit_code None: still connected at the deadline, so we killed it."""

    exit_code: int | None
    stderr: str
    ended_at: float  # time.monotonic()


@dataclass(eq=False)  # identity: sessions are kept in sets
class HeldSession:
    """One ssh client process; stdout lines are timestamped as they arrive (time.monotonic())."""

    argv: list[str]
    lines: list[tuple[float, str]] = field(default_factory=list)
    _proc: Popen[bytes] | None = None
    _stderr: list[bytes] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _readers: list[threading.Thread] = field(default_factory=list)
    _exit: list[tuple[int, float]] = field(default_factory=list)  # (exit code, when), set by the waiter
    _stdout_done: bool = False  # every line the client printed has been read

    def start(self) -> None:
        # PDEATHSIG: if archami dies, so does the client (it may hold a connection to a real instance).
        # It fires when the *thread* that started it ends, so callers start sessions from long-lived threads.
        self._proc = spawn(self.argv, stdin=DEVNULL, stdout=PIPE, stderr=PIPE)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        out, err = self._proc.stdout, self._proc.stderr

        def read_stdout() -> None:
            for raw in out:
                with self._changed:
                    self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
                    self._changed.notify_all()
            with self._changed:
                self._stdout_done = True
                self._changed.notify_all()

        def read_stderr() -> None:
            self._stderr.extend(err)

        proc = self._proc

        def wait_exit() -> None:
            code = proc.wait()
            with self._changed:
                self._exit.append((code, time.monotonic()))  # when it ended, however late we look
                self._changed.notify_all()

        self._readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr, wait_exit)]
        for reader in self._readers:
            reader.start()

    def wait_for_line(self, text: str, deadline: float) -> float | None:
        """When a stdout line equal to `text` arrived; None if the session ended or the deadline passed first."""
        with self._changed:
            while True:
                for at, line in self.lines:
                    if line == text:
                        return at
                if time.monotonic() >= deadline or self._stdout_done:
                    return None
                self._changed.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))

    def said(self, text: str) -> bool:
        """Whether a stdout line equal to `text` has arrived."""
        with self._changed:
            return any(line == text for _, line in self.lines)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_end(self, deadline: float) -> SessionEnd:
        """Wait for the client to exit (the time is when it exited); at the deadline kill it (exit_code None)."""
        assert self._proc is not None
        with self._changed:
            while not self._exit and time.monotonic() < deadline:
                self._changed.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            ended = self._exit[0] if self._exit else None
        if ended is None:
            given_up = time.monotonic()
            self.kill()
        for reader in self._readers:
            reader.join(timeout=5)
        stderr = b"".join(self._stderr).decode(errors="replace")
        if ended is None:
            return SessionEnd(None, stderr, given_up)
        return SessionEnd(ended[0], stderr, ended[1])

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> HeldSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
