"""The agent split across its units as systemd runs it: early before sshd, late only when early left work."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_support import leftovers, make_root, new_key, run_agent

from archami.vm.imds import ImdsConfig, ImdsServer

pytestmark = pytest.mark.integration

FLAG = "run/archami/firstboot-late"


def test_nothing_slow_means_no_late_unit(tmp_path: Path) -> None:
    root = make_root(tmp_path)  # Debian example: ed25519 + ecdsa host keys only
    with ImdsServer(ImdsConfig(public_keys={"alice": new_key(tmp_path, "alice")})) as server:
        run = run_agent(root, [server.url], phase="early")
    assert run.returncode == 0, run.stderr
    assert not (root / FLAG).exists()
    assert run.steps["user-data"] == "none"


def test_user_data_script_runs_in_the_late_phase_once(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    script = b"#!/bin/sh\necho \"late work in $PWD\"\nexit 3\n"
    with ImdsServer(ImdsConfig(public_keys={"alice": new_key(tmp_path, "alice")}, user_data=script)) as server:
        early = run_agent(root, [server.url], phase="early")
        assert early.returncode == 0, early.stderr
        assert (root / FLAG).read_text() == "user-data\n"
        assert not (root / "var/log/archami/user-data.log").exists()  # not before sshd

        late = run_agent(root, [], phase="late")  # the late phase needs no metadata service
        assert late.returncode == 0, late.stderr
        log = (root / "var/log/archami/user-data.log").read_text()
        assert f"late work in {root}" in log and "exit status 3" in log
        assert not (root / FLAG).exists()
        assert list((root / "var/lib/archami/firstboot/user-data").iterdir()) == []  # the script is gone

        again = run_agent(root, [server.url], phase="early")  # a reboot: nothing queued, nothing flagged
        assert again.returncode == 0
        assert not (root / FLAG).exists()
        run_agent(root, [], phase="late")
    assert (root / "var/log/archami/user-data.log").read_text() == log
    assert leftovers(root) == []


def test_rsa_host_key_waits_for_the_late_phase(tmp_path: Path) -> None:
    root = make_root(tmp_path, "arch.toml")
    with ImdsServer(ImdsConfig(public_keys={"alice": new_key(tmp_path, "alice")})) as server:
        early = run_agent(root, [server.url], phase="early")
    assert early.returncode == 0, early.stderr
    keys = root / "etc/ssh"
    assert (keys / "ssh_host_ed25519_key").exists() and (keys / "ssh_host_ecdsa_key").exists()
    assert not (keys / "ssh_host_rsa_key").exists()  # sshd starts on ed25519 without waiting for RSA
    assert (root / FLAG).read_text() == "rsa\n"
    late = run_agent(root, [], phase="late")
    assert late.returncode == 0, late.stderr
    assert (keys / "ssh_host_rsa_key").exists() and (keys / "ssh_host_rsa_key.pub").exists()
    assert "generated rsa" in str(late.steps)


def test_cloud_init_mode_does_only_mirrors_and_keyring(tmp_path: Path) -> None:
    import shutil
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="fb", dir="/tmp"))  # gpg-agent's socket path limit
    try:
        root = make_root(short, "arch.toml", mode="cloud-init", pacman_keyrings=[])
        (root / "etc/pacman.conf").write_text("[options]\n")
        (root / "usr/share/ec2-pacman-mirrors").mkdir(parents=True)
        (root / "usr/share/ec2-pacman-mirrors/us-east-1.mirrorlist").write_text("Server = http://use1.test/\n")
        config = ImdsConfig(public_keys={"alice": new_key(tmp_path, "alice")}, user_data=b"#!/bin/sh\ntrue\n")
        with ImdsServer(config) as server:
            run = run_agent(root, [server.url])
        assert run.returncode == 0, run.stderr
        assert (root / "etc/pacman.d/mirrorlist").read_text() == "Server = http://use1.test/\n"
        assert (root / "etc/pacman.d/gnupg/pubring.gpg").exists()
        # cloud-init's part: keys, hostname, host keys, user-data, growing the root
        assert not (root / "root/.ssh/authorized_keys").exists()
        assert not (root / "etc/hostname").exists()
        assert not list((root / "etc").glob("ssh/ssh_host_*"))
        assert not (root / "var/lib/archami/firstboot/user-data").exists()
        assert set(run.steps) == {"metadata", "mirrors", "grow-root", "keyring"}
    finally:
        shutil.rmtree(short, ignore_errors=True)
