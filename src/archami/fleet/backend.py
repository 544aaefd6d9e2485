"""What the fleet runner needs from a place that runs instances: one interface, a QEMU and an EC2 backend.

The runner plans `Slot`s (arm x index), asks the backend to `open` the run (shared resources: key pair,
security group, EC2's RunInstances), `boot`s each slot from its worker threads (QEMU starts a VM there, so
the host is never asked to boot more guests at once than the pool allows), logs in through the returned
`Endpoint`, and always calls `close`, which must leave nothing behind and may be called more than once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    key: Path  # private key file


@dataclass(frozen=True)
class ArmSpec:
    """One side of the experiment: a label and the image it boots (an image path or an AMI id)."""

    label: str
    image: str


@dataclass(frozen=True)
class Slot:
    arm: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.arm}-{self.index}"


@dataclass
class Instance:
    slot: Slot
    name: str  # what the backend calls it: an instance id, or the VM's name
    instance_type: str
    endpoint: Endpoint
    launched_at: float  # time.monotonic() when it was launched or started
    alive: Callable[[], bool]  # False once the instance is known to be gone (QEMU exited, EC2 terminated)


class FleetBackend(Protocol):
    kind: str
    default_parallel: int  # how many instances may boot or reboot at once by default

    def open(self, arms: list[ArmSpec], per_arm: int) -> list[Slot]:
        """Create what the whole run shares; the slots to boot, in launch order."""
        ...

    def boot(self, slot: Slot) -> Instance:
        """Start one slot's instance (returns once it is starting, before SSH is up)."""
        ...

    def close(self) -> None:
        """Stop and delete everything this run created. Idempotent; safe after a partial `open`."""
        ...
