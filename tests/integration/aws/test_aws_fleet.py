"""The EC2 fleet backend against moto in server mode: launch, tags, ClientTokens, cleanup after a simulated
crash, nothing leaked.

What is emulated: moto's instances never boot and have no SSH. The SSH part of a round (held session,
reboot, boot id, health) runs against local QEMU guests standing in for the instances' addresses
(`endpoint_for`); the EC2 side (key pair, security group, RunInstances, terminate, delete) is moto's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from aws_helpers import RequestRecorder
from moto_server import FAKE_CREDENTIALS, MotoServer

from archami.artifacts import BuildResult
from archami.aws import fleet as ec2_fleet
from archami.aws.clients import Clients
from archami.aws.images import tags_of
from archami.fleet.backend import ArmSpec, Endpoint
from archami.fleet.ec2 import Ec2Fleet
from archami.fleet.endings import ENDINGS
from archami.fleet.run import run_fleet
from archami.fleet.workdir import DEFAULT_WORK_ROOT
from archami.vm import ssh
from archami.vm.boot import random_instance
from archami.vm.guest import running_guest
from archami.vm.qemu import make_overlay

pytestmark = pytest.mark.integration
# Run ids name /tmp/archami-fleet/RUN_ID and EC2 tags: unique per test session, so two test runs on one
# machine never remove each other's run directory.
RUN = secrets.token_hex(3)
REGION = "us-east-1"
REPO = Path(__file__).resolve().parents[3]
ARCHAMI = [sys.executable, "-c", "import sys; sys.argv[0] = 'archami'; from archami.cli import main; main()"]


def _ami(clients: Clients) -> str:
    image_id: str = clients.ec2(REGION).register_image(
        Name="archami-fleet-test", Architecture="x86_64", VirtualizationType="hvm", RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    return image_id


def _cli(moto: MotoServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ARCHAMI, "fleet", *args, "--backend", "ec2", "--endpoint-url", moto.url, "--region", REGION],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, **FAKE_CREDENTIALS, "PYTHONPATH": str(REPO / "src"), **env},
    )


def test_open_tags_everything_and_close_removes_it(clients: Clients, recorder: RequestRecorder) -> None:
    ami = _ami(clients)
    seen: list[tuple[str, str]] = []

    def record(instance_id: str, address: str, key: ssh.SshKey) -> Endpoint:
        seen.append((instance_id, address))
        return Endpoint(address, 22, "root", key.private)  # never dialled here

    backend = Ec2Fleet(f"fleet-moto-open-{RUN}", clients, REGION, "t3.micro", spot=True, endpoint_for=record)
    try:
        slots = backend.open([ArmSpec("a", ami), ArmSpec("b", ami)], 2)
        assert [s.name for s in slots] == ["a-0", "b-0", "a-1", "b-1"]
        left = ec2_fleet.find_leftovers(clients.ec2(REGION), f"fleet-moto-open-{RUN}")
        assert len(left.instances) == 4 and len(left.security_groups) == 1 and len(left.key_pairs) == 1
        described = clients.ec2(REGION).describe_instances(InstanceIds=left.instances)["Reservations"]
        arms = sorted(tags_of(i)["archami:fleet-arm"] for r in described for i in r["Instances"])
        assert arms == ["a", "a", "b", "b"]
        instance = backend.boot(slots[0])
        assert seen == [(instance.name, instance.endpoint.host)] and instance.name in left.instances
    finally:
        backend.close()
    launches = recorder.ec2_actions("RunInstances")
    assert sorted(r["ClientToken"] for r in launches) == [f"fleet-moto-open-{RUN}-a", f"fleet-moto-open-{RUN}-b"]
    assert all(r["InstanceMarketOptions.MarketType"] == "spot" for r in launches)
    assert all(r["TagSpecification.1.Tag.1.Key"] == "Name" for r in launches)
    assert ec2_fleet.find_leftovers(clients.ec2(REGION), f"fleet-moto-open-{RUN}").empty()
    assert not (DEFAULT_WORK_ROOT / f"fleet-moto-open-{RUN}").exists()


def test_crash_after_launch_then_cleanup_by_tag(clients: Clients, moto: MotoServer, tmp_path: Path) -> None:
    ami = _ami(clients)
    log = tmp_path / "boundaries"
    crashed = _cli(moto, ami, "--instances", "2", "--reboots", "1", "--run-id", f"fleet-moto-crash-{RUN}",
                   "--out", str(tmp_path / "r1"), ARCHAMI_CRASH_AT="3", ARCHAMI_CRASH_LOG=str(log))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    names = [line.split()[1] for line in log.read_text().splitlines()]
    assert names == ["fleet-key-pair", "fleet-security-group", "fleet-launched"]  # killed right after RunInstances
    assert "estimated cost" in crashed.stderr
    left = ec2_fleet.find_leftovers(clients.ec2(REGION), f"fleet-moto-crash-{RUN}")
    assert len(left.instances) == 2 and left.security_groups and left.key_pairs
    cleaned = _cli(moto, "--cleanup", f"fleet-moto-crash-{RUN}")
    assert cleaned.returncode == 0, cleaned.stderr
    assert ec2_fleet.find_leftovers(clients.ec2(REGION), f"fleet-moto-crash-{RUN}").empty()
    assert not (DEFAULT_WORK_ROOT / f"fleet-moto-crash-{RUN}").exists()


def test_emulated_instances_are_never_dialled(clients: Clients, moto: MotoServer, tmp_path: Path) -> None:
    """Against an emulator, instances have no SSH: the run says so and still removes what it launched."""
    ami = _ami(clients)
    result = _cli(moto, ami, "--instances", "1", "--reboots", "1", "--run-id", f"fleet-moto-nossh-{RUN}",
                  "--out", str(tmp_path / "r"), "--no-plot", "--json")
    assert result.returncode == 0, result.stderr
    assert "emulator" in result.stdout
    assert ec2_fleet.find_leftovers(clients.ec2(REGION), f"fleet-moto-nossh-{RUN}").empty()


@pytest.mark.slow
def test_rounds_over_qemu_stand_ins(clients: Clients, debian_build: BuildResult, tmp_path: Path) -> None:
    """One moto instance whose SSH address is a local QEMU guest serving the fleet's own key pair."""
    ami = _ami(clients)
    guests = contextlib.ExitStack()

    def stand_in(instance_id: str, address: str, key: ssh.SshKey) -> Endpoint:
        work = tmp_path / instance_id
        work.mkdir()
        make_overlay(debian_build.image, work / "disk.qcow2")
        metadata = replace(random_instance(instance_id=instance_id), public_keys={"fleet": key.public_line})
        guest = guests.enter_context(running_guest(work / "disk.qcow2", "bios", metadata, key, work, timeout=900,
                                                   clean_shutdown=False))
        return Endpoint("127.0.0.1", guest.ssh_port, "root", key.private)

    backend = Ec2Fleet(f"fleet-moto-ssh-{RUN}", clients, REGION, "t3.micro", endpoint_for=stand_in)
    with guests:
        report = run_fleet(backend, [ArmSpec("ami", ami)], 1, 1, run_id=f"fleet-moto-ssh-{RUN}")
    (instance,) = report.instances
    assert instance.name.startswith("i-") and instance.instance_type == "t3.micro", instance
    (outcome,) = instance.rounds
    print(f"stand-in round: {outcome.ending} after {outcome.seconds_to_close}s, SSH after {outcome.seconds_to_ssh}s")
    assert outcome.ending in ENDINGS and outcome.boot_id_changed is True and outcome.seconds_to_ssh
    assert ec2_fleet.find_leftovers(clients.ec2(REGION), f"fleet-moto-ssh-{RUN}").empty()
