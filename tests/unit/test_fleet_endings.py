"""Session endings classified from what the real OpenSSH client reported, recorded against a real guest by
bench/record_ssh_endings.py (tests/unit/fleet_data/ssh_endings.json: exit code and stderr per scenario)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archami.fleet.endings import FAILED_ENDINGS, classify, last_message

RECORDED = json.loads((Path(__file__).parent / "fleet_data" / "ssh_endings.json").read_text())["scenarios"]

# What each recorded scenario is, in the fleet's terms (see the scenario texts in the file).
EXPECTED = {
    "exit_status": "clean",
    "remote_sigterm": "clean",
    "reboot": "hang",  # this image's sshd sessions outlive the network: the failure, in the client's words
    "reboot_with_probes": "hang",
    "network_gone_with_probes": "hang",
    "instant_reboot_with_probes": "hang",  # ssh's keepalive gave up before the guest was back
    "instant_reboot_patient_probes": "eof",  # QEMU's user-mode network turns the new kernel's reset into a close
    "instant_reboot": "hang",
    "reset_mid_session": "reset",
    "reboot_sessions_in_scopes": "eof",  # with libpam-systemd the session is stopped while the network is up
    "remote_sigterm_in_scope": "clean",
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_recorded_outcome_is_classified(scenario: str) -> None:
    record = RECORDED[scenario]
    assert classify(record["exit_code"], record["stderr"]).ending == EXPECTED[scenario], record


def test_a_clean_close_carries_the_remote_exit_status() -> None:
    record = RECORDED["exit_status"]
    assert record["exit_code"] == 3
    assert classify(record["exit_code"], record["stderr"]).exit_status == 3


def test_only_connections_nobody_closed_count_as_failures() -> None:
    def failed(name: str) -> bool:
        record = RECORDED[name]
        return classify(record["exit_code"], record["stderr"]).ending in FAILED_ENDINGS

    assert failed("reboot") and failed("reset_mid_session") and failed("instant_reboot")
    assert not failed("reboot_sessions_in_scopes") and not failed("exit_status") and not failed("remote_sigterm")


@pytest.mark.parametrize(
    ("stderr", "ending"),
    [
        # OpenSSH 9.x wording of the transport errors that end a session
        ("Connection to 10.0.0.5 closed by remote host.\r\nConnection to 10.0.0.5 closed.\r\n", "eof"),
        ("client_loop: send disconnect: Broken pipe\r\n", "reset"),
        ("Read from remote host 10.0.0.5: Connection reset by peer\r\n", "reset"),
        ("Connection reset by 10.0.0.5 port 22\r\n", "reset"),
        ("Timeout, server 10.0.0.5 not responding.\r\n", "hang"),
        ("ssh_dispatch_run_fatal: Connection to 10.0.0.5 port 22: message authentication code incorrect\r\n",
         "reset"),
    ],
)
def test_client_messages(stderr: str, ending: str) -> None:
    assert classify(255, stderr).ending == ending


def test_still_connected_at_the_deadline_is_a_hang() -> None:
    assert classify(None, "").ending == "hang"


def test_last_message_skips_the_known_hosts_warning() -> None:
    stderr = RECORDED["network_gone_with_probes"]["stderr"]
    assert "Warning: Permanently added" in stderr
    assert last_message(stderr).startswith("Timeout, server")
