"""A booted guest reachable by SSH: QEMU + the local IMDS server, started and stopped together.

`running_guest(...)` is the building block of the boot test and of tests that need more than its checks
(e.g. booting one disk twice as two instances).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from archami.errors import ArchamiError
from archami.runner import TextResult, run_text
from archami.vm import ssh
from archami.vm.console_watch import ConsoleWatch
from archami.vm.imds import ImdsConfig, ImdsServer
from archami.vm.qemu import (
    Accel,
    Firmware,
    GuestArchitecture,
    QemuVM,
    VmSpec,
    choose_accel,
    free_loopback_port,
    machine_for,
    signals_raise,
)

_CONNECTION_DROPPED = re.compile(
    r"kex_exchange_identification|Connection reset by peer|Connection closed by .* port|Connection refused"
)


class BootFailed(ArchamiError):
    """The guest did not become reachable; `serial_log` says why."""

    def __init__(self, message: str, serial_log: Path) -> None:
        super().__init__(f"{message} (serial console: {serial_log})")
        self.serial_log = serial_log


@dataclass
class Guest:
    vm: QemuVM
    imds: ImdsServer
    key: ssh.SshKey
    ssh_port: int
    boot_seconds: float  # QEMU start to the first successful SSH login with `key`
    serial_log: Path
    accel: Accel

    def run(
        self, command: str, key: ssh.SshKey | None = None, timeout: float = 60.0
    ) -> TextResult:
        """Run `command` over SSH. A connection sshd dropped before the command ran (ssh's own exit 255 with a
        connection error, e.g. while the agent reloads sshd for a late host key) is tried again twice; a
        refused key or the command's own failure is returned as it is."""
        for attempt in range(3):
            result = ssh.run_ssh(self.ssh_port, (key or self.key).private, command, timeout=timeout)
            if result.returncode != 255 or not _CONNECTION_DROPPED.search(result.stderr) or attempt == 2:
                return result
            time.sleep(2.0)
        raise AssertionError("unreachable")

    def output(self, command: str, timeout: float = 60.0) -> str:
        """stdout of a command that must succeed."""
        result = self.run(command, timeout=timeout)
        if result.returncode != 0:
            raise ArchamiError(f"guest command {command!r} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def can_login(self, key: ssh.SshKey) -> bool:
        return self.run("true", key=key, timeout=30).returncode == 0

    def host_key(self) -> str | None:
        return ssh.host_key(self.ssh_port)

    def password_refusal(self) -> list[str] | None:
        """The methods sshd lists when a password login is attempted (None: it did not refuse normally)."""
        result = run_text(ssh.password_probe_argv(self.ssh_port), timeout=30)
        return None if result.returncode == 0 else ssh.offered_methods(result.stderr)

    def poweroff(self, timeout: float = 90.0) -> bool:
        """Shut down from inside (as a user would), then ACPI power button, then kill; True if clean."""
        with contextlib.suppress(ArchamiError):
            self.run("systemctl poweroff", timeout=15)
        if self.vm.wait(timeout):
            return True
        return self.vm.stop(clean_timeout=30)


@contextlib.contextmanager
def running_guest(
    disk: Path,
    firmware: Firmware,
    imds: ImdsConfig,
    key: ssh.SshKey,
    work_dir: Path,
    *,
    timeout: float = 300.0,
    accel: Accel | None = None,
    disk_format: str = "qcow2",
    clean_shutdown: bool = True,
    icount_shift: int | None = None,
    forwards: tuple[tuple[str, int, int], ...] = (),
    architecture: GuestArchitecture = "x86_64",
    progress: Callable[[str], None] = lambda stage: None,
) -> Iterator[Guest]:
    """Boot `disk` (which the caller may let the guest modify: pass an overlay to keep an image pristine),
    serve `imds` to it, wait until `key` logs in, yield the Guest; on leaving, power it off and stop QEMU.
    `clean_shutdown=False` stops QEMU at once: for a disk that is thrown away, an orderly shutdown only
    costs time (20-40 s under TCG). `icount_shift` slows the guest's clock (see VmSpec); `forwards` relays more
    guest addresses to loopback services (see VmSpec). Raises BootFailed when SSH login does not work within
    `timeout` seconds. `architecture` is the guest's (aarch64: the virt machine with EDK2, emulated by TCG on
    an x86_64 host). `progress` hears each stage of the boot the console shows, then the first login."""
    work_dir.mkdir(parents=True, exist_ok=True)
    serial_log = work_dir / f"serial-{firmware}.log"
    ovmf_vars = None
    if firmware == "uefi":
        ovmf_vars = work_dir / "OVMF_VARS.fd"
        shutil.copyfile(machine_for(architecture).uefi_vars, ovmf_vars)  # each VM writes its own variable store
    chosen: Accel = "tcg" if icount_shift is not None else accel or choose_accel(architecture)
    with signals_raise(), ImdsServer(imds) as server:
        spec = VmSpec(
            disk=disk, disk_format="raw" if disk_format == "raw" else "qcow2", firmware=firmware,
            ssh_port=free_loopback_port(), imds_port=server.port, serial_log=serial_log,
            qmp_socket=_socket_path(work_dir), accel=chosen, ovmf_vars=ovmf_vars, icount_shift=icount_shift,
            architecture=architecture,
            # icount runs all vCPUs in turn on one host thread, and Linux 6.1 hangs there bringing up a second.
            cpus=1 if icount_shift is not None else VmSpec.cpus, forwards=forwards,
        )
        with QemuVM(spec) as vm:
            started = vm.started_at or time.monotonic()
            console = ConsoleWatch(serial_log)

            def still_running() -> bool:
                ok = vm.alive() and console.check() is None
                for stage in console.new_stages():
                    progress(stage)
                return ok

            try:
                logged_in = ssh.wait_for_login(
                    spec.ssh_port, key.private, started + timeout, still_running=still_running
                )
            except ArchamiError as exc:
                if console.fatal is not None:
                    raise BootFailed(f"{firmware} boot of {disk.name} failed: the console shows {console.fatal}",
                                     serial_log) from exc
                detail = str(exc) if vm.alive() else f"{exc}; {vm.exit_detail()}"
                raise BootFailed(f"{firmware} boot of {disk.name} failed: {detail}", serial_log) from exc
            progress(f"SSH login with the metadata key works ({logged_in - started:.1f}s)")
            guest = Guest(vm, server, key, spec.ssh_port, logged_in - started, serial_log, chosen)
            try:
                yield guest
            finally:
                if clean_shutdown:
                    guest.poweroff()


def _socket_path(work_dir: Path) -> Path:
    """A Unix socket path must fit in 108 bytes; deep work dirs (pytest's tmp_path) get a short one."""
    path = work_dir / "qmp.sock"
    if len(str(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="archami-qmp-")) / "qmp.sock"
