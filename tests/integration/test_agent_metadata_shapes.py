"""Metadata of an unexpected shape never locks the user out: the agent checks values for safety where they
are used (file names, logs, URLs), not for today's AWS format, and skips only the step a value it cannot
use was needed for. Run as in the image (system python3, the installed launcher) against the local IMDS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_support import ROOT_MACHINE_ID, authorized_keys, host_key_fingerprints, leftovers, make_root, new_key
from agent_support import run_agent as run

from archami.vm.imds import ImdsConfig, ImdsServer

pytestmark = pytest.mark.integration

STATE = "var/lib/archami/firstboot/state.json"
USER_DATA = b"#!/bin/sh\necho \"user-data for $ARCHAMI_INSTANCE_ID\"\n"


def _config(key: str, **changes: object) -> ImdsConfig:
    values: dict[str, object] = {"hostname": "ip-10-1-2-3.ec2.internal", "public_keys": {"alice": key},
                                 "user_data": USER_DATA}
    values.update(changes)
    return ImdsConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("instance_id", [
    "i-0123456789ABCDEF0",  # upper case
    "i-" + "0" * 40,  # longer than any id EC2 hands out today
    "mi-0a1b2c3d/../../../etc",  # a path if it were used as one
    "instance 7",
])
def test_odd_but_printable_instance_id_configures_the_instance(tmp_path: Path, instance_id: str) -> None:
    key = new_key(tmp_path, "alice")
    root = make_root(tmp_path)
    with ImdsServer(_config(key, instance_id=instance_id)) as server:
        first = run(root, [server.url])
        again = run(root, [server.url])  # a reboot of the same instance
    assert first.returncode == 0, first.stderr
    assert authorized_keys(root) == key + "\n"
    assert (root / "etc/hostname").read_text() == "ip-10-1-2-3\n"
    assert json.loads((root / STATE).read_text())["instance_id"] == instance_id
    log = (root / "var/log/archami/user-data.log").read_text()
    assert log.count(f"user-data for {instance_id}\n") == 1, log  # once per instance, even across the reboot
    # The script was queued inside the state directory whatever the id says, and removed after it ran.
    assert list((root / "var/lib/archami/firstboot/user-data").iterdir()) == []
    assert [p.name for p in (root / "var/lib/archami").iterdir()] == ["firstboot"]
    assert again.returncode == 0 and again.steps["authorized-keys"].startswith("skipped: already done")
    assert leftovers(root) == []


@pytest.mark.parametrize("instance_id", [
    "",  # present but empty
    "i-0123\x1b[2J\nforged log line",  # control characters: would forge log lines and status output
    "i-" + "f" * 400,  # longer than a file name
])
def test_unusable_instance_id_still_installs_the_key(tmp_path: Path, instance_id: str) -> None:
    key = new_key(tmp_path, "alice")
    root = make_root(tmp_path)
    with ImdsServer(_config(key, instance_id=instance_id)) as server:
        result = run(root, [server.url])
    assert result.returncode == 0, result.stderr
    assert result.status["ok"] is True
    assert authorized_keys(root) == key + "\n"  # the user can log in
    assert (root / "etc/hostname").read_text() == "ip-10-1-2-3\n"
    assert set(host_key_fingerprints(root)) == {"ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key.pub"}
    # What belongs to one instance only is left alone when the instance cannot be told apart.
    assert (root / "etc/machine-id").read_text().strip() == ROOT_MACHINE_ID
    assert result.steps["machine-id"] == "skipped: no usable instance-id"
    assert result.steps["user-data"].startswith("skipped: no usable instance-id")
    assert not (root / "var/log/archami/user-data.log").exists()
    assert "\x1b" not in result.stderr and "\nforged log line" not in result.stderr
    assert leftovers(root) == []


def test_a_region_named_in_a_new_way_gets_its_mirror(tmp_path: Path) -> None:
    key = new_key(tmp_path, "alice")
    root = make_root(tmp_path, apt_region_mirror="http://$region.mirror.test/debian")
    (root / "etc/apt").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").write_text("deb http://deb.invalid/debian trixie main\n")
    with ImdsServer(_config(key, region="eusc-de-east-1", availability_zone="eusc-de-east-1a")) as server:
        result = run(root, [server.url])
    assert result.returncode == 0, result.stderr
    assert "http://eusc-de-east-1.mirror.test/debian" in (root / "etc/apt/sources.list").read_text()


def test_an_unusable_region_skips_only_the_mirror(tmp_path: Path) -> None:
    key = new_key(tmp_path, "alice")
    root = make_root(tmp_path, apt_region_mirror="http://$region.mirror.test/debian")
    (root / "etc/apt").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").write_text("deb http://deb.invalid/debian trixie main\n")
    with ImdsServer(_config(key, region="../../evil", availability_zone="us-east-1a/..")) as server:
        result = run(root, [server.url])
    assert result.returncode == 0, result.stderr
    assert authorized_keys(root) == key + "\n"
    assert (root / "etc/apt/sources.list").read_text() == "deb http://deb.invalid/debian trixie main\n"
    assert "unusable region" in result.stderr
