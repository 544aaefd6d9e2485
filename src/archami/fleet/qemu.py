"""The QEMU fleet: N local VMs, each with its own qcow2 overlay, IMDS server and forwarded SSH port.

Nothing outlives the run, whatever ends it:
- error, Ctrl-C, SIGTERM: `close()` (always called by the runner) kills every QEMU, stops every IMDS server
  and removes the run directory;
- SIGKILL of archami: QEMU has PR_SET_PDEATHSIG (vm/qemu.py) and dies with the thread that started it, the
  IMDS servers and forwarded ports are our own sockets and close with us, and each overlay is unlinked as
  soon as QEMU has opened it, so its blocks are freed when QEMU goes. What remains is the run directory's
  key and serial logs, which the next run (or `archami fleet --cleanup RUN_ID`) removes (fleet/workdir.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from archami.errors import ArchamiError
from archami.fleet.backend import ArmSpec, Endpoint, Instance, Slot
from archami.fleet.schedule import interleave
from archami.fleet.workdir import DEFAULT_WORK_ROOT, create_run_dir, run_dir
from archami.vm import ssh
from archami.vm.boot import random_instance
from archami.vm.imds import ImdsServer
from archami.vm.qemu import (
    OVMF_VARS,
    Accel,
    Firmware,
    QemuVM,
    VmSpec,
    choose_accel,
    free_loopback_port,
    make_overlay,
)
from archami.vm.qmp import QmpClient


class QemuFleet:
    kind = "qemu"

    def __init__(
        self, run_id: str, *, work_root: Path = DEFAULT_WORK_ROOT, firmware: Firmware = "bios",
        accel: Accel | None = None, memory_mib: int = 512, logs_dir: Path | None = None,
    ) -> None:
        self.run_id = run_id
        self.work_root = work_root
        self.dir = run_dir(work_root, run_id)
        self.firmware: Firmware = firmware
        self.accel: Accel = accel or choose_accel()
        self.memory_mib = memory_mib
        self.logs_dir = logs_dir  # serial logs are kept there when the run ends
        # One TCG vCPU per guest and as many guests booting as there are host cores: never overcommitted.
        self.default_parallel = max(1, os.cpu_count() or 1)
        self._images: dict[str, Path] = {}
        self._key: ssh.SshKey | None = None
        self._lock = threading.Lock()  # port choice and QEMU start: two of our VMs never race for a port
        self._vms: list[QemuVM] = []
        self._imds: list[ImdsServer] = []
        self._closed = False

    @property
    def instance_type(self) -> str:
        return f"qemu-{self.accel}"

    def open(self, arms: list[ArmSpec], per_arm: int) -> list[Slot]:
        for arm in arms:
            image = Path(arm.image)
            if not image.is_file():
                raise ArchamiError(f"{image}: no such image (the qemu backend boots image files)")
            self._images[arm.label] = image
        create_run_dir(self.work_root, self.run_id)
        self._key = ssh.generate_keypair(self.dir, comment=f"archami-fleet-{self.run_id}")
        return interleave([a.label for a in arms], per_arm)

    def boot(self, slot: Slot) -> Instance:
        if self._key is None:
            raise ArchamiError("the fleet was not opened")
        work = self.dir / slot.name
        work.mkdir()
        overlay = work / "disk.qcow2"
        make_overlay(self._images[slot.arm], overlay)
        metadata = replace(random_instance(), public_keys={"archami-fleet": self._key.public_line},
                           instance_type=self.instance_type)
        ovmf_vars = None
        if self.firmware == "uefi":
            ovmf_vars = work / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, ovmf_vars)
        with self._lock:
            if self._closed:
                raise ArchamiError("the fleet is closing")
            imds = ImdsServer(metadata).start()
            self._imds.append(imds)
            spec = VmSpec(
                disk=overlay, firmware=self.firmware, ssh_port=free_loopback_port(), imds_port=imds.port,
                serial_log=work / "serial.log", qmp_socket=_socket_path(work),
                accel=self.accel, memory_mib=self.memory_mib, cpus=1, ovmf_vars=ovmf_vars,
            )
            vm = QemuVM(spec)
            self._vms.append(vm)
            vm.start()
            launched = vm.started_at or time.monotonic()
            _wait_until_disks_open(vm)
        overlay.unlink()  # QEMU holds it open: its blocks are freed when QEMU exits, however it exits
        endpoint = Endpoint("127.0.0.1", spec.ssh_port, "root", self._key.private)
        return Instance(slot, metadata.instance_id, self.instance_type, endpoint, launched, vm.alive)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            vms, servers = self._vms, self._imds
            self._vms, self._imds = [], []  # a second close has nothing left to do
        for vm in vms:  # SIGTERM to all first: they exit together instead of one after another
            if vm.alive() and vm.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(vm.pid, signal.SIGTERM)
        for vm in vms:
            vm.kill()
            with contextlib.suppress(OSError):
                vm.spec.qmp_socket.unlink()
                if vm.spec.qmp_socket.parent.name.startswith("archami-fleet-qmp-"):
                    vm.spec.qmp_socket.parent.rmdir()
        for server in servers:
            server.stop()
        if self.logs_dir is not None and self.dir.is_dir():
            for log in self.dir.glob("*/serial.log"):
                self.logs_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, self.logs_dir / f"serial-{log.parent.name}.log")
        shutil.rmtree(self.dir, ignore_errors=True)


def _socket_path(work: Path) -> Path:
    """A Unix socket path must fit in 108 bytes: a deep work root gets a private directory in /tmp."""
    path = work / "qmp.sock"
    if len(str(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="archami-fleet-qmp-")) / "qmp.sock"


def _wait_until_disks_open(vm: QemuVM, timeout: float = 60.0) -> None:
    """QMP answers commands only once the machine is built, so its disks are open by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not vm.alive():
            raise ArchamiError(f"QEMU did not start: {vm.exit_detail()}")
        try:
            with QmpClient(vm.spec.qmp_socket, timeout=5.0) as qmp:
                qmp.execute("query-block")
                return
        except OSError:
            time.sleep(0.2)
    raise ArchamiError(f"QEMU's monitor did not answer within {timeout:.0f}s")
