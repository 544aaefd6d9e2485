"""Record how the OpenSSH client ends a held session in each way a reboot can end it, against a real guest.

Writes tests/unit/fleet_data/ssh_endings.json: for every scenario the ssh client's exit code (null: still
connected at our deadline) and its stderr, which the unit tests classify. Run as root on a built image:

    python bench/record_ssh_endings.py out/bookworm-ebs-hvm-x86_64/image.raw [SCENARIO...]

Naming scenarios re-records only those (reset_mid_session is one) and keeps the file's other records;
NAME=STORED runs scenario NAME and stores it as STORED (the same scenario on another image).

Each scenario runs in the guest's held session (the same command shape `archami fleet` uses), so the texts
are the client's own words; scenarios that take the guest's network away wait for it to come back.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from archami.vm import ssh
from archami.vm.boot import random_instance
from archami.vm.guest import Guest, running_guest
from archami.vm.qemu import make_overlay
from archami.vm.ssh_session import HeldSession, held_session_argv

OUT = Path(__file__).resolve().parents[1] / "tests" / "unit" / "fleet_data" / "ssh_endings.json"
READY = "archami-ready"

# name -> (what it stands for, remote command run after the ready line, ServerAliveInterval (0: none),
# ServerAliveCountMax)
SCENARIOS: dict[str, tuple[str, str, int, int]] = {
    "exit_status": ("the remote command exits 3 by itself", "exit 3", 0, 3),
    "remote_sigterm": ("the remote shell is killed by SIGTERM (a session scope stopped)", "kill -TERM $$", 0, 3),
    "reboot": ("systemctl reboot from the held session, as archami fleet does",
               "systemctl reboot; exec sleep 600", 0, 3),
    "reboot_with_probes": ("the same with the client's keepalive probes on", "systemctl reboot; exec sleep 600", 5, 3),
    "network_gone_with_probes": (
        "the interface goes down under the session; ssh's keepalive gives up on the server",
        "(sleep 1; ip link set eth0 down; sleep 45; ip link set eth0 up) >/dev/null 2>&1 & exec sleep 600", 5, 3,
    ),
    "instant_reboot_with_probes": (
        "the kernel reboots at once (no shutdown, nothing closes the connection); ssh's keepalive gives up "
        "before the guest is back",
        "(sleep 1; echo b > /proc/sysrq-trigger) >/dev/null 2>&1 & exec sleep 600", 5, 3,
    ),
    "instant_reboot_patient_probes": (
        "the same, but the client outlasts the reboot: its probes meet the new kernel, whose reset QEMU's "
        "user-mode network passes on as a plain close",
        "(sleep 1; echo b > /proc/sysrq-trigger) >/dev/null 2>&1 & exec sleep 600", 5, 60,
    ),
    "instant_reboot": (
        "the kernel reboots at once and the client sends nothing: it hangs until our deadline",
        "(sleep 1; echo b > /proc/sysrq-trigger) >/dev/null 2>&1 & exec sleep 600", 0, 3,
    ),
}
DIAGNOSTICS = (
    "cat /proc/self/cgroup; systemctl show -p KillMode -p After ssh.service; "
    "dpkg-query -W -f='${Package} ${Status}\\n' libpam-systemd 2>&1; systemctl --version | head -1"
)


class ResettingRelay:
    """A loopback TCP relay in front of the guest's SSH port that can end the client's side with a reset
    (SO_LINGER 0, then close), for a real mid-session 'connection reset' in the client's words. One thread
    with select: a socket must not be in another thread's recv when it is closed, or no RST is sent."""

    def __init__(self, target_port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        self.resetting = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        peers = {client: upstream, upstream: client}
        with contextlib.suppress(OSError):
            while not self.resetting.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        upstream.close()

    def reset(self) -> None:
        self.resetting.set()


def run_scenario(guest: Guest, command: str, alive: int, deadline_seconds: float, alive_count: int = 3,
                 port: int | None = None, after_ready: Callable[[], None] | None = None) -> dict[str, object]:
    argv = held_session_argv("127.0.0.1", port or guest.ssh_port, guest.key.private, f"echo {READY}; {command}",
                             alive_interval=alive, alive_count=alive_count)
    with HeldSession(argv) as session:
        ready = session.wait_for_line(READY, time.monotonic() + 120)
        if after_ready is not None:
            time.sleep(2)
            after_ready()
        end = session.wait_end(time.monotonic() + deadline_seconds)
    return {
        "exit_code": end.exit_code,
        "stderr": end.stderr,
        "seconds_to_close": None if ready is None else round(end.ended_at - ready, 1),
    }


def ssh_version() -> str:
    return subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr.strip()


def main() -> None:
    image = Path(sys.argv[1])
    stored_as = dict(arg.split("=", 1) if "=" in arg else (arg, arg) for arg in sys.argv[2:])
    only = set(stored_as)
    records: dict[str, object] = {"ssh_version": ssh_version(), "scenarios": {}}
    if only and OUT.exists():
        records = json.loads(OUT.read_text())
    with tempfile.TemporaryDirectory(prefix="archami-endings-") as tmp:
        work = Path(tmp)
        make_overlay(image, work / "disk.qcow2")
        key = ssh.generate_keypair(work)
        instance = replace(random_instance(), public_keys={"k": key.public_line})
        with running_guest(work / "disk.qcow2", "bios", instance, key, work, timeout=600,
                           clean_shutdown=False) as guest:
            records["guest"] = guest.output(DIAGNOSTICS)
            print(records["guest"], flush=True)
            if not only or "reset_mid_session" in only:
                relay = ResettingRelay(guest.ssh_port)
                result = run_scenario(guest, "exec sleep 600", 0, 60, port=relay.port, after_ready=relay.reset)
                result["scenario"] = "the connection is reset mid-session (a relay closes it with SO_LINGER 0)"
                records["scenarios"]["reset_mid_session"] = result  # type: ignore[index]
                print("reset_mid_session", result, flush=True)
            for name, (meaning, command, alive, count) in SCENARIOS.items():
                if only and name not in only:
                    continue
                result = run_scenario(guest, command, alive, deadline_seconds=150, alive_count=count)
                result["scenario"] = f"{meaning} ({image.parent.name})"
                records["scenarios"][stored_as.get(name, name)] = result  # type: ignore[index]
                print(name, result, flush=True)
                ssh.wait_for_login(guest.ssh_port, key.private, time.monotonic() + 600)
    OUT.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
