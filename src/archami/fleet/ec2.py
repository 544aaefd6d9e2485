"""The EC2 fleet: N instances of an AMI per arm, with a throwaway key pair and security group.

All EC2 calls are in archami.aws.fleet; this adapts them to the runner's interface. `close` removes
everything tagged with the run, not only what this process remembers, so a retried or half-finished
launch is cleaned up too. `endpoint_for` lets tests point an instance's SSH at a local stand-in.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from archami.aws import fleet as ec2_fleet
from archami.aws.clients import Clients
from archami.errors import ArchamiError
from archami.fleet.backend import ArmSpec, Endpoint, Instance, Slot
from archami.fleet.schedule import interleave
from archami.fleet.workdir import DEFAULT_WORK_ROOT, create_run_dir, run_dir
from archami.vm import ssh

EndpointFor = Callable[[str, str, ssh.SshKey], Endpoint]  # (instance id, address, key) -> where SSH goes


class Ec2Fleet:
    kind = "ec2"
    default_parallel = 16  # EC2 boots in parallel on its own hardware: the pool only waits on SSH

    def __init__(
        self, run_id: str, clients: Clients, region: str, instance_type: str, *,
        user: str = "root", ssh_cidr: str = "0.0.0.0/0", spot: bool = False, subnet_id: str | None = None,
        vpc_id: str | None = None, availability_zone: str | None = None, private_address: bool = False,
        work_root: Path = DEFAULT_WORK_ROOT, launch_timeout: float = 600.0,
        endpoint_for: EndpointFor | None = None,
    ) -> None:
        self.run_id = run_id
        self.ec2 = clients.ec2(region)
        self.instance_type = instance_type
        self.user = user
        self.ssh_cidr = ssh_cidr
        self.spot = spot
        self.subnet_id, self.vpc_id, self.availability_zone = subnet_id, vpc_id, availability_zone
        self.private_address = private_address
        self.work_root = work_root
        self.launch_timeout = launch_timeout
        self.endpoint_for = endpoint_for
        # An emulator's instances never boot: their addresses are made up (and may not be ours to dial).
        self.emulated = clients.settings.endpoint_url is not None and endpoint_for is None
        self._ids: dict[Slot, str] = {}
        self._launched_at = 0.0
        self._key: ssh.SshKey | None = None
        self._closed = threading.Event()
        self._cleaned = False

    def open(self, arms: list[ArmSpec], per_arm: int) -> list[Slot]:
        directory = create_run_dir(self.work_root, self.run_id)
        self._key = ssh.generate_keypair(directory, comment=f"archami-fleet-{self.run_id}")
        key_name = ec2_fleet.ensure_key_pair(self.ec2, self.run_id, self._key.public_line)
        group = ec2_fleet.ensure_security_group(self.ec2, self.run_id, self.ssh_cidr, self.vpc_id)
        self._launched_at = time.monotonic()
        for arm in arms:
            ids = ec2_fleet.launch(self.ec2, ec2_fleet.LaunchRequest(
                run_id=self.run_id, arm=arm.label, image_id=arm.image, instance_type=self.instance_type,
                count=per_arm, key_name=key_name, security_group_id=group, spot=self.spot,
                subnet_id=self.subnet_id, availability_zone=self.availability_zone,
            ))
            for index, instance_id in enumerate(ids):
                self._ids[Slot(arm.label, index)] = instance_id
        return interleave([a.label for a in arms], per_arm)

    def boot(self, slot: Slot) -> Instance:
        if self._key is None:
            raise ArchamiError("the fleet was not opened")
        instance_id = self._ids[slot]
        if self.emulated:
            raise ArchamiError(f"{instance_id} runs in an emulator (--endpoint-url): it has no SSH to test")
        state = ec2_fleet.wait_running(self.ec2, instance_id, self._launched_at + self.launch_timeout)
        address = state.private_ip if self.private_address else (state.public_ip or state.private_ip)
        if not address:
            raise ArchamiError(f"{instance_id} has no address to reach it by")
        endpoint = (self.endpoint_for(instance_id, address, self._key) if self.endpoint_for
                    else Endpoint(address, 22, self.user, self._key.private))
        return Instance(slot, instance_id, state.instance_type, endpoint, self._launched_at,
                        lambda: not self._closed.is_set())

    def close(self) -> None:
        self._closed.set()
        if self._cleaned:
            return
        ec2_fleet.cleanup(self.ec2, self.run_id)
        shutil.rmtree(run_dir(self.work_root, self.run_id), ignore_errors=True)
        self._cleaned = True  # only once it worked: a second close retries a failed one
