"""Run one EC2-like virtual machine under QEMU.

`qemu_command(spec)` is pure (argv from a `VmSpec`) and unit-tested without QEMU; `QemuVM` starts it and
guarantees that no QEMU outlives us: clean power-down via QMP, then SIGTERM, then SIGKILL, on every exit
path (exceptions, Ctrl-C, SIGTERM), and the kernel kills QEMU if our own process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, PIPE, Popen, TimeoutExpired  # processes start via archami.runner
from types import FrameType
from typing import Literal

from archami.errors import ArchamiError, ToolMissingError
from archami.foreign import needs_emulation
from archami.hosttools import install_hint
from archami.runner import run_text, spawn
from archami.vm.qmp import QmpClient

Firmware = Literal["bios", "uefi"]
Accel = Literal["kvm", "tcg"]
GuestArchitecture = Literal["x86_64", "aarch64"]

QEMU = "qemu-system-x86_64"
QEMU_IMG = "qemu-img"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# EDK2 for QEMU's arm virt machine (Debian's qemu-efi-aarch64; both files padded to the 64 MiB flash size).
AAVMF_CODE = Path("/usr/share/AAVMF/AAVMF_CODE.fd")
AAVMF_VARS = Path("/usr/share/AAVMF/AAVMF_VARS.fd")


@dataclass(frozen=True)
class Machine:
    """The EC2-like QEMU machine of one guest architecture."""

    qemu: str
    machine: str
    tcg_cpu: str | None  # the CPU model under TCG (None: QEMU's default for the machine)
    uefi_code: Path
    uefi_vars: Path
    firmwares: tuple[Firmware, ...]


MACHINES: dict[str, Machine] = {
    # q35 with SeaBIOS or OVMF: a Nitro x86 instance boots either way (uefi-preferred AMIs are tested under both).
    "x86_64": Machine(QEMU, "q35", None, OVMF_CODE, OVMF_VARS, ("bios", "uefi")),
    # virt with EDK2 (ACPI, like Graviton's firmware): UEFI only, as on EC2's arm64 instances. Neoverse N1 is
    # Graviton2's core; unlike QEMU's "max" it has no pointer authentication, which TCG emulates slowly.
    "aarch64": Machine("qemu-system-aarch64", "virt", "neoverse-n1", AAVMF_CODE, AAVMF_VARS, ("uefi",)),
}


def machine_for(architecture: str) -> Machine:
    try:
        return MACHINES[architecture]
    except KeyError:
        raise VmError(f"no boot test for {architecture} guests (QEMU machines: {', '.join(MACHINES)})") from None
# The EC2 instance metadata service address, reachable from the guest through a guestfwd rule.
IMDS_ADDRESS = "169.254.169.254"
# QEMU refuses a guestfwd address outside its virtual network, so the network must contain the IMDS address.
GUEST_NETWORK = "169.254.169.0/24"


class VmError(ArchamiError):
    """QEMU could not be started or stopped as asked."""


@dataclass(frozen=True)
class VmSpec:
    """Everything that decides QEMU's command line."""

    disk: Path
    firmware: Firmware
    ssh_port: int
    imds_port: int
    serial_log: Path
    qmp_socket: Path
    accel: Accel = "tcg"
    disk_format: Literal["qcow2", "raw"] = "qcow2"
    memory_mib: int = 1024
    cpus: int = 2
    smbios_uuid: str = field(default_factory=lambda: ec2_identity()[0])
    smbios_serial: str | None = None  # None: the UUID, as on a Nitro instance
    volume_serial: str = "vol0a1b2c3d4e5f60718"
    architecture: GuestArchitecture = "x86_64"
    ovmf_code: Path | None = None  # UEFI firmware code (None: the architecture's, see MACHINES)
    ovmf_vars: Path | None = None  # the VM's own writable copy; required for uefi
    # TCG only: each guest instruction advances the guest's clock by 2**icount_shift ns, so a guest can be
    # made to look as slow to itself as on an overloaded host (its timeouts fire after less work), reliably.
    icount_shift: int | None = None
    # More guest addresses relayed to services on the host's loopback, like the IMDS one: (guest address,
    # guest port, 127.0.0.1 port), e.g. a package mirror an instance must reach; nothing else is reachable.
    forwards: tuple[tuple[str, int, int], ...] = ()


def ec2_identity() -> tuple[str, str]:
    """SMBIOS system UUID and serial as EC2 reports them: both start with 'ec2'.

    cloud-init (and other EC2 detection code) only treats the machine as EC2 when both do.
    """
    value = "ec2" + str(uuid.uuid4())[3:]
    return value, value


def uefi_code(spec: VmSpec) -> Path:
    return spec.ovmf_code or machine_for(spec.architecture).uefi_code


def qemu_command(spec: VmSpec, qemu: str | None = None) -> list[str]:
    """The QEMU argv for `spec`. Pure: no files are read or created."""
    machine = machine_for(spec.architecture)
    if spec.firmware not in machine.firmwares:
        raise ValueError(f"{spec.architecture} guests boot with {' or '.join(machine.firmwares)}, not {spec.firmware}")
    if spec.firmware == "uefi" and spec.ovmf_vars is None:
        raise ValueError("uefi needs a per-VM copy of the OVMF variable store (ovmf_vars)")
    accel = "kvm" if spec.accel == "kvm" else "tcg,tb-size=128"  # a 128 MiB translation cache: reboots 2-3x faster
    argv = [
        qemu or machine.qemu,
        "-name", f"archami-boot-{spec.ssh_port}",
        "-nodefaults", "-no-user-config", "-display", "none",
        "-machine", machine.machine,
        "-accel", accel,
    ]
    if spec.icount_shift is not None:
        if spec.accel == "kvm":
            raise ValueError("icount (a slowed guest clock) needs TCG")
        argv += ["-icount", f"shift={spec.icount_shift},sleep=on"]  # sleep=on: an idle guest waits in real time
    if spec.accel == "kvm":
        argv += ["-cpu", "host"]
    elif machine.tcg_cpu is not None:
        argv += ["-cpu", machine.tcg_cpu]  # on q35 QEMU's default model is the fastest to emulate
    argv += [
        "-smp", str(spec.cpus),
        "-m", str(spec.memory_mib),
        "-smbios", f"type=1,manufacturer=Amazon EC2,product=archami-qemu,uuid={spec.smbios_uuid},"
        f"serial={spec.smbios_serial or spec.smbios_uuid}",
    ]
    if spec.firmware == "uefi":
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={uefi_code(spec)}",
            "-drive", f"if=pflash,format=raw,unit=1,file={spec.ovmf_vars}",
        ]
    # An EC2 Nitro root volume is an NVMe namespace whose serial is the volume id.
    argv += [
        "-drive", f"file={spec.disk},if=none,id=root,format={spec.disk_format},discard=unmap",
        "-device", f"nvme,drive=root,serial={spec.volume_serial}",
    ]
    # restrict=on: the guest reaches nothing but the two forwards below (no traffic leaves this machine).
    # guestfwd -cmd: starts one relay per connection (the -tcp: form funnels all into one and breaks).
    netdev = (
        f"user,id=net0,net={GUEST_NETWORK},restrict=on,ipv6=off,"
        f"hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22,"
        f"guestfwd=tcp:{IMDS_ADDRESS}:80-cmd:nc 127.0.0.1 {spec.imds_port}"
    )
    for address, port, host_port in spec.forwards:
        netdev += f",guestfwd=tcp:{address}:{port}-cmd:nc 127.0.0.1 {host_port}"
    argv += [
        "-netdev", netdev,
        "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",  # entropy for sshd/getrandom: TCG has no RDRAND to lean on
        "-chardev", f"file,id=serial0,path={spec.serial_log}",
        "-serial", "chardev:serial0",
        "-qmp", f"unix:{spec.qmp_socket},server=on,wait=off",
    ]
    return argv


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} is not installed ({install_hint(name)})")
    return path


@functools.cache
def kvm_works(qemu: str = QEMU, timeout: float = 5.0) -> bool:
    """Whether QEMU can really run a guest with KVM here.

    /dev/kvm can exist and open fine while KVM is unusable (nested virtualization: QEMU aborts setting an
    MSR, or the guest hangs). So start the same CPU model as a real boot, let SeaBIOS run to its
    'No bootable device.' message on its debug port, and call KVM usable only if it gets there in time.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or shutil.which(qemu) is None:
        return False
    argv = [
        qemu, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "64", "-nodefaults", "-no-user-config",
        "-display", "none", "-no-reboot",
        "-chardev", "stdio,id=dbg", "-device", "isa-debugcon,iobase=0x402,chardev=dbg",
    ]
    proc = spawn(argv, stdout=PIPE, stderr=DEVNULL, stdin=DEVNULL)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        return any(b"No bootable device" in line for line in proc.stdout)
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()


def choose_accel(architecture: str = "x86_64") -> Accel:
    """KVM when it works, else TCG; ARCHAMI_ACCEL=kvm|tcg overrides the probe. A guest of another
    architecture than the host's is always emulated (TCG)."""
    if needs_emulation(architecture):
        return "tcg"
    forced = os.environ.get("ARCHAMI_ACCEL", "").strip().lower()
    if forced in ("kvm", "tcg"):
        return "kvm" if forced == "kvm" else "tcg"
    # The probe boots SeaBIOS: x86 only; elsewhere KVM is used when asked for.
    return "kvm" if architecture == "x86_64" and kvm_works() else "tcg"


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (QEMU binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def disk_virtual_size(disk: Path) -> int:
    """The size the guest sees: a raw file's length, or a qcow2's virtual size."""
    require_tool(QEMU_IMG)
    result = run_text([QEMU_IMG, "info", "-U", "--output=json", str(disk)])
    if result.returncode != 0:
        raise VmError(f"qemu-img info {disk}: {result.stderr.strip()}")
    size: int = json.loads(result.stdout)["virtual-size"]
    return size


def make_overlay(image: Path, overlay: Path, size: int | None = None) -> None:
    """A qcow2 overlay over the raw image, so the tested image is never written; `size` may exceed the image
    (a larger EBS volume than the AMI's snapshot, to test grow-root)."""
    require_tool(QEMU_IMG)
    base = image.stat().st_size
    if size is not None and size < base:
        raise VmError(f"disk size {size} is smaller than the image ({base} bytes)")
    argv = [QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.resolve()), str(overlay)]
    if size is not None:
        argv.append(str(size))
    result = run_text(argv)
    if result.returncode != 0:
        raise VmError(f"qemu-img create failed: {result.stderr.strip()}")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit while a VM runs, so `finally` blocks stop QEMU.

    Only the main thread may set handlers; elsewhere PR_SET_PDEATHSIG remains the safety net.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class QemuVM:
    """One running QEMU. Use as a context manager: leaving the block always stops QEMU."""

    def __init__(self, spec: VmSpec, qemu: str | None = None) -> None:
        self.spec = spec
        self.argv = qemu_command(spec, qemu)
        self._qemu = self.argv[0]
        self._proc: Popen[bytes] | None = None
        self._stderr_path = spec.serial_log.with_name(spec.serial_log.name + ".qemu-stderr")
        self.started_at: float | None = None

    def start(self) -> None:
        require_tool(self._qemu)
        code = uefi_code(self.spec)
        if self.spec.firmware == "uefi" and not code.exists():
            hint = install_hint("OVMF" if self.spec.architecture == "x86_64" else "AAVMF")
            raise ToolMissingError(f"{code} missing ({hint})")
        self.spec.serial_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self._stderr_path, "wb") as stderr:
            # A new session: Ctrl-C reaches only us, and we shut QEMU down in order.
            self._proc = spawn(self.argv, stdin=DEVNULL, stdout=DEVNULL, stderr=stderr)
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exit_detail(self) -> str:
        """Why QEMU is gone: its exit code and the end of its stderr."""
        code = self._proc.poll() if self._proc else None
        try:
            tail = self._stderr_path.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        return f"QEMU exited with {code}" + (f": {' | '.join(tail)}" if tail else "")

    def powerdown(self, timeout: float = 60.0) -> bool:
        """ACPI power button (what EC2 StopInstances does); True when the guest shut down in time."""
        if not self.alive():
            return True
        try:
            with QmpClient(self.spec.qmp_socket, timeout=5.0) as qmp:
                qmp.execute("system_powerdown")
        except OSError:
            return False
        return self.wait(timeout)

    def wait(self, timeout: float) -> bool:
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout)
        except TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """Hard stop: SIGTERM (QEMU flushes its disk cache), then SIGKILL."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        if not self.wait(10):
            self._proc.kill()
            self._proc.wait()

    def stop(self, clean_timeout: float = 60.0) -> bool:
        """Clean shutdown if possible, else a hard kill. True when the guest powered off by itself."""
        clean = self.powerdown(clean_timeout)
        self.kill()
        with contextlib.suppress(OSError):
            self.spec.qmp_socket.unlink()
        return clean

    def __enter__(self) -> QemuVM:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        with contextlib.suppress(OSError):
            self.spec.qmp_socket.unlink()
