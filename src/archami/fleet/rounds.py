"""One reboot round on one instance: the seed's experiment, measured.

The seed's failure (FS#31250) was the SSH session *that issued the reboot* never closing, so the held
session issues it itself, as a user typing `reboot` at a prompt does: it prints the boot id, says it is
about to reboot, runs `systemctl reboot` (which queues the job and returns) and then holds the connection
with `sleep`. The word comes *before* the command: once the job is queued, systemd may stop the session
before a later `echo` reaches us (seen in CI: "closed by remote host" with the reboot under way), and a
failed `systemctl reboot` says so and ends the session at once. Meanwhile we wait for a login on the new
boot. A held session still open once the new boot accepts logins (plus `HANG_GRACE` seconds) can never
be closed any more, since the kernel that knew the connection is gone: that is a hang, and it costs no
time beyond the reboot itself. Then the boot id must have changed (a real reboot, not a session that
merely dropped) and the health checks must pass.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from archami.errors import ArchamiError
from archami.fleet.backend import Endpoint, Instance
from archami.fleet.endings import classify, last_message
from archami.fleet.health import BOOT_ID_PATH, after_reboot_script, parse_after_reboot
from archami.fleet.report import RoundResult
from archami.vm import ssh
from archami.vm.ssh_session import HeldSession, held_session_argv

REBOOTING = "archami-fleet-rebooting"
REBOOT_FAILED = "archami-fleet-reboot-failed"
HANG_GRACE = 5.0


@dataclass(frozen=True)
class Timeouts:
    session: float = 120.0  # log in and get the reboot issued
    ssh: float = 600.0  # reboot issued -> SSH login works again (TCG reboots take 40-200 s under load)
    command: float = 180.0  # the after-reboot probe (it waits for start-up to finish)


class SessionRegistry:
    """The held sessions in flight, so an interrupted run can end them at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: set[HeldSession] = set()
        self.cancelled = threading.Event()

    def add(self, session: HeldSession) -> None:
        with self._lock:
            self._sessions.add(session)

    def discard(self, session: HeldSession) -> None:
        with self._lock:
            self._sessions.discard(session)

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.kill()


def held_command(user: str) -> str:
    sudo = "" if user == "root" else "sudo -n "
    return (f"cat {BOOT_ID_PATH}; echo {REBOOTING}; {sudo}systemctl reboot || {{ echo {REBOOT_FAILED}; exit 97; }}; "
            "exec sleep 600")


def run_command(endpoint: Endpoint, command: str, timeout: float) -> str:
    result = ssh.run_ssh(endpoint.port, endpoint.key, command, timeout=timeout, user=endpoint.user,
                         host=endpoint.host)
    if result.returncode not in (0, 1):  # the probe's commands may say no; ssh itself must not fail
        raise ArchamiError(f"ssh {endpoint.host}:{endpoint.port} failed ({result.returncode}): "
                           f"{last_message(result.stderr) or 'no message'}")
    return result.stdout


def reboot_round(
    instance: Instance, number: int, timeouts: Timeouts, registry: SessionRegistry, run_started: float
) -> RoundResult:
    endpoint = instance.endpoint
    begun = time.monotonic()
    result = RoundResult(round=number, ending=None, started_at=round(begun - run_started, 1))
    argv = held_session_argv(endpoint.host, endpoint.port, endpoint.key, held_command(endpoint.user), endpoint.user)
    session = HeldSession(argv)
    registry.add(session)
    try:
        session.start()
        issued = session.wait_for_line(REBOOTING, begun + timeouts.session)
        if issued is None:
            end = session.wait_end(time.monotonic())
            result.error = f"the reboot was not issued: {last_message(end.stderr) or 'no output'}"
            return result
        old_boot_id = session.lines[0][1].strip() if session.lines else ""

        def still_running() -> bool:
            return instance.alive() and not registry.cancelled.is_set() and not session.said(REBOOT_FAILED)

        logged_in: float | None = None
        try:
            # A login counts once it reaches the new boot: the old sshd may still answer while going down.
            logged_in = ssh.wait_for_login(endpoint.port, endpoint.key, issued + timeouts.ssh, user=endpoint.user,
                                           still_running=still_running, host=endpoint.host,
                                           command=f"cat {BOOT_ID_PATH}",
                                           accept=lambda out: bool(out.strip()) and out.strip() != old_boot_id)
        except ArchamiError as exc:
            result.error = f"no SSH after the reboot: {exc}"
        end = session.wait_end(time.monotonic() if logged_in is None else logged_in + HANG_GRACE)
        if session.said(REBOOT_FAILED):
            why = last_message(end.stderr) or "no output"
            result.error = f"the reboot was not issued: systemctl reboot failed: {why}"
            return result
    finally:
        session.kill()
        registry.discard(session)
    classified = classify(end.exit_code, end.stderr)
    result.ending = classified.ending
    result.exit_status = classified.exit_status
    result.ssh_message = classified.message
    result.seconds_to_close = round(end.ended_at - issued, 2)
    if logged_in is None:
        return result
    result.seconds_to_ssh = round(logged_in - issued, 2)
    try:
        new_boot_id, health = parse_after_reboot(run_command(endpoint, after_reboot_script(), timeouts.command))
    except ArchamiError as exc:
        result.error = str(exc)
        return result
    result.boot_id_changed = bool(new_boot_id) and new_boot_id != old_boot_id
    result.health = health
    return result
