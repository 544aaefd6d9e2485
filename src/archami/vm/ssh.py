"""SSH probes against a booted guest, with OpenSSH's own client (what users log in with).

Argument lists are built by pure functions (unit-tested); archami's runner runs them.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archami.errors import ArchamiError
from archami.runner import CommandError, TextResult, run_text

# Options for a throwaway guest: never trust or record its host key, never prompt, never use an agent.
_COMMON_OPTIONS = (
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=10",
    "-o", "IdentityAgent=none",
)


@dataclass(frozen=True)
class SshKey:
    private: Path
    public_line: str  # "ssh-ed25519 AAAA... comment"


def generate_keypair(directory: Path, name: str = "id_ed25519", comment: str = "archami-boot-test") -> SshKey:
    """A fresh, passphrase-less ed25519 key pair made with ssh-keygen."""
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / name
    for path in (private, private.with_name(name + ".pub")):
        path.unlink(missing_ok=True)
    made = run_text(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)])
    if made.returncode != 0:
        raise ArchamiError(f"ssh-keygen failed: {made.stderr.strip()}")
    return SshKey(private, private.with_name(name + ".pub").read_text().strip())


def ssh_argv(port: int, key: Path, command: str, user: str = "root", host: str = "127.0.0.1") -> list[str]:
    """Log in with exactly this key (IdentitiesOnly) and public-key authentication only."""
    return [
        "ssh", *_COMMON_OPTIONS,
        "-o", "IdentitiesOnly=yes",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
        "-o", "PreferredAuthentications=publickey",
        "-i", str(key), "-p", str(port), f"{user}@{host}", command,
    ]


def password_probe_argv(port: int, user: str = "root", host: str = "127.0.0.1") -> list[str]:
    """Try to log in by password without any key; in batch mode ssh cannot type one, so it fails, but the
    server's refusal lists the methods it still allows ('Permission denied (publickey,password).')."""
    return [
        "ssh", *_COMMON_OPTIONS,
        "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password,keyboard-interactive",
        "-p", str(port), f"{user}@{host}", "true",
    ]


_DENIED = re.compile(r"Permission denied \(([^)]*)\)")


def offered_methods(ssh_stderr: str) -> list[str] | None:
    """Authentication methods the server listed when it refused us, or None if it never said."""
    match = _DENIED.search(ssh_stderr)
    if match is None:
        return None
    return [m for m in match.group(1).split(",") if m]


def read_banner(port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> str | None:
    """The SSH identification line ('SSH-2.0-OpenSSH_9.2p1 ...'), or None if nothing answers yet.

    QEMU's user-mode network accepts the TCP connection on the forwarded port before the guest listens, then
    closes it: only a banner proves that sshd is up.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = sock.recv(256)
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode(errors="replace").strip()
    return line if line.startswith("SSH-") else None


def run_ssh(
    port: int, key: Path, command: str, timeout: float = 60.0, user: str = "root", host: str = "127.0.0.1"
) -> TextResult:
    try:
        return run_text(ssh_argv(port, key, command, user, host), timeout=timeout)
    except CommandError as exc:
        raise ArchamiError(f"ssh command {command!r} timed out after {timeout:.0f}s") from exc


def wait_for_login(
    port: int, key: Path, deadline: float, user: str = "root", still_running: Callable[[], bool] = lambda: True,
    host: str = "127.0.0.1", command: str = "true", accept: Callable[[str], bool] = lambda stdout: True,
) -> float:
    """Poll the banner, then log in until it works; returns time.monotonic() of the first good login.

    The key only arrives once the first-boot agent has read it from metadata, so sshd may be up and still
    refuse us for a moment: retry until the deadline. An attempt that hangs (a guest going down under the
    connection, sshd still starting) is retried too. `command` runs on each login and `accept` judges its
    stdout: after a reboot, a login that still reaches the old boot is not the one awaited.
    """
    last_error = "no SSH banner"
    while time.monotonic() < deadline:
        if not still_running():
            raise ArchamiError(f"the VM stopped before SSH login worked ({last_error})")
        if read_banner(port, host) is None:
            time.sleep(0.5)
            continue
        try:
            result = run_ssh(
                port, key, command, timeout=max(5.0, min(30.0, deadline - time.monotonic())), user=user, host=host
            )
        except ArchamiError as exc:  # the attempt hung
            last_error = str(exc)
            continue
        if result.returncode == 0 and accept(result.stdout):
            return time.monotonic()
        last_error = result.stderr.strip() or (f"ssh exited {result.returncode}" if result.returncode else
                                               f"{command!r} printed {result.stdout.strip()[:80]!r}")
        time.sleep(1.0)
    raise ArchamiError(f"no SSH login within the deadline: {last_error}")


def host_key(port: int, key_type: str = "ed25519", host: str = "127.0.0.1") -> str | None:
    """The guest's public host key of `key_type` as 'type base64', read with ssh-keyscan."""
    result = run_text(["ssh-keyscan", "-T", "10", "-t", key_type, "-p", str(port), host], timeout=30)
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#"):
            return f"{fields[1]} {fields[2]}"
    return None
