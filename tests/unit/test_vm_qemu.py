"""QEMU command line, overlay and process handling without booting anything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archami.vm import qemu
from archami.vm.qemu import VmSpec, qemu_command


def _spec(tmp_path: Path, **changes: object) -> VmSpec:
    base: dict[str, object] = {
        "disk": tmp_path / "disk.qcow2",
        "firmware": "bios",
        "ssh_port": 40022,
        "imds_port": 40080,
        "serial_log": tmp_path / "serial.log",
        "qmp_socket": tmp_path / "qmp.sock",
        "smbios_uuid": "ec2aaaaa-1111-2222-3333-444455556666",
        "smbios_serial": "ec2aaaaa-1111-2222-3333-444455556666",
    }
    base.update(changes)
    return VmSpec(**base)  # type: ignore[arg-type]


def _option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, value in enumerate(argv) if value == flag]


def test_tcg_uses_a_large_translation_cache_and_no_host_cpu(tmp_path: Path) -> None:
    argv = qemu_command(_spec(tmp_path))
    assert _option(argv, "-accel") == ["tcg,tb-size=128"]
    assert "-cpu" not in argv


def test_kvm_uses_the_host_cpu(tmp_path: Path) -> None:
    argv = qemu_command(_spec(tmp_path, accel="kvm"))
    assert _option(argv, "-accel") == ["kvm"]
    assert _option(argv, "-cpu") == ["host"]


def test_a_slowed_guest_clock_is_tcg_only(tmp_path: Path) -> None:
    assert "-icount" not in qemu_command(_spec(tmp_path))
    assert _option(qemu_command(_spec(tmp_path, icount_shift=2)), "-icount") == ["shift=2,sleep=on"]
    with pytest.raises(ValueError, match="TCG"):
        qemu_command(_spec(tmp_path, accel="kvm", icount_shift=2))


def test_bios_has_no_pflash_and_uefi_has_code_readonly_and_own_vars(tmp_path: Path) -> None:
    assert not any("if=pflash" in a for a in qemu_command(_spec(tmp_path)))
    vars_copy = tmp_path / "vars.fd"
    drives = _option(qemu_command(_spec(tmp_path, firmware="uefi", ovmf_vars=vars_copy)), "-drive")
    assert drives[0] == f"if=pflash,format=raw,unit=0,readonly=on,file={qemu.OVMF_CODE}"
    assert drives[1] == f"if=pflash,format=raw,unit=1,file={vars_copy}"


def test_uefi_without_a_vars_copy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OVMF"):
        qemu_command(_spec(tmp_path, firmware="uefi"))


def test_disk_is_an_nvme_volume_with_a_volume_serial(tmp_path: Path) -> None:
    argv = qemu_command(_spec(tmp_path, disk_format="raw"))
    assert f"file={tmp_path / 'disk.qcow2'},if=none,id=root,format=raw,discard=unmap" in _option(argv, "-drive")
    assert "nvme,drive=root,serial=vol0a1b2c3d4e5f60718" in _option(argv, "-device")


def test_smbios_says_amazon_ec2_with_ec2_uuid_and_serial(tmp_path: Path) -> None:
    (smbios,) = _option(qemu_command(_spec(tmp_path)), "-smbios")
    fields = dict(part.split("=", 1) for part in smbios.split(",")[1:])
    assert smbios.startswith("type=1,")
    assert fields["manufacturer"] == "Amazon EC2"
    assert fields["uuid"].startswith("ec2") and fields["serial"].startswith("ec2")


def test_smbios_serial_defaults_to_the_uuid(tmp_path: Path) -> None:
    spec = VmSpec(disk=tmp_path / "d", firmware="bios", ssh_port=1, imds_port=2, serial_log=tmp_path / "s",
                  qmp_socket=tmp_path / "q")
    (smbios,) = _option(qemu_command(spec), "-smbios")
    fields = dict(part.split("=", 1) for part in smbios.split(",")[1:])
    assert fields["uuid"] == fields["serial"] == spec.smbios_uuid and spec.smbios_uuid.startswith("ec2")


def test_ec2_identity_is_a_uuid_starting_with_ec2() -> None:
    import uuid

    value, serial = qemu.ec2_identity()
    assert value == serial and value.startswith("ec2")
    assert str(uuid.UUID(value)) == value
    assert qemu.ec2_identity()[0] != value


def test_network_forwards_ssh_on_loopback_and_imds_through_nc(tmp_path: Path) -> None:
    (netdev,) = _option(qemu_command(_spec(tmp_path)), "-netdev")
    parts = netdev.split(",")
    assert "net=169.254.169.0/24" in parts  # must contain the IMDS address or QEMU refuses guestfwd
    assert "restrict=on" in parts  # nothing leaves this machine
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in parts
    assert "guestfwd=tcp:169.254.169.254:80-cmd:nc 127.0.0.1 40080" in parts


def test_serial_console_goes_to_the_log_file_and_qmp_to_the_socket(tmp_path: Path) -> None:
    argv = qemu_command(_spec(tmp_path))
    assert f"file,id=serial0,path={tmp_path / 'serial.log'}" in _option(argv, "-chardev")
    assert _option(argv, "-serial") == ["chardev:serial0"]
    assert _option(argv, "-qmp") == [f"unix:{tmp_path / 'qmp.sock'},server=on,wait=off"]


def test_accel_override_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHAMI_ACCEL", "tcg")
    assert qemu.choose_accel() == "tcg"
    monkeypatch.setenv("ARCHAMI_ACCEL", "KVM")
    assert qemu.choose_accel() == "kvm"


def test_free_loopback_port_is_bindable() -> None:
    import socket

    port = qemu.free_loopback_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_overlay_is_larger_than_the_image_and_leaves_it_untouched(tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\x55" * 1024 * 1024)
    overlay = tmp_path / "o.qcow2"
    qemu.make_overlay(image, overlay, 4 * 1024 * 1024)
    assert qemu.disk_virtual_size(overlay) == 4 * 1024 * 1024
    subprocess.run(["qemu-io", "-c", "write -P 0xaa 0 4096", str(overlay)], check=True, capture_output=True)
    assert image.read_bytes() == b"\x55" * 1024 * 1024


def test_overlay_smaller_than_the_image_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\0" * 2 * 1024 * 1024)
    with pytest.raises(qemu.VmError, match="smaller"):
        qemu.make_overlay(image, tmp_path / "o.qcow2", 1024 * 1024)


CHILD = """
import sys, time
from pathlib import Path
import archami.vm.qemu as q
q.qemu_command = lambda spec, qemu=q.QEMU: ["sleep", "300"]
spec = q.VmSpec(disk=Path("d"), firmware="bios", ssh_port=1, imds_port=2, serial_log=Path(sys.argv[1]),
                qmp_socket=Path(sys.argv[2]))
with q.signals_raise(), q.QemuVM(spec, qemu="sleep") as vm:
    print(vm.pid, flush=True)
    time.sleep(300)
"""


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie child of init counts as gone too.
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_no_vm_process_outlives_its_owner(tmp_path: Path, how: signal.Signals) -> None:
    """The VM process dies with us on SIGTERM and Ctrl-C (finally blocks) and on SIGKILL (PDEATHSIG)."""
    owner = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "serial.log"), str(tmp_path / "q.sock")],
        stdout=subprocess.PIPE, text=True,
    )
    assert owner.stdout is not None
    vm_pid = int(owner.stdout.readline())
    assert not _gone(vm_pid, within=0.2)
    owner.send_signal(how)
    owner.wait(timeout=30)
    assert _gone(vm_pid)


def test_aarch64_guest_is_a_virt_machine_with_a_graviton_core_and_edk2(tmp_path: Path) -> None:
    vars_copy = tmp_path / "vars.fd"
    argv = qemu_command(_spec(tmp_path, architecture="aarch64", firmware="uefi", ovmf_vars=vars_copy))
    assert argv[0] == "qemu-system-aarch64"
    assert _option(argv, "-machine") == ["virt"]
    assert _option(argv, "-cpu") == ["neoverse-n1"]  # Graviton2's core; TCG's default would be 32-bit
    assert _option(argv, "-accel") == ["tcg,tb-size=128"]
    drives = _option(argv, "-drive")
    assert drives[0] == f"if=pflash,format=raw,unit=0,readonly=on,file={qemu.AAVMF_CODE}"
    assert drives[1] == f"if=pflash,format=raw,unit=1,file={vars_copy}"
    # The same EC2 shape as on x86_64: an NVMe root volume, the local IMDS, SMBIOS saying Amazon EC2.
    assert "nvme,drive=root,serial=vol0a1b2c3d4e5f60718" in _option(argv, "-device")
    assert any("guestfwd=tcp:169.254.169.254:80" in n for n in _option(argv, "-netdev"))
    assert _option(argv, "-smbios")[0].startswith("type=1,manufacturer=Amazon EC2,")


def test_aarch64_guests_boot_uefi_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aarch64 guests boot with uefi"):
        qemu_command(_spec(tmp_path, architecture="aarch64"))
    with pytest.raises(qemu.VmError, match="riscv64"):
        qemu.machine_for("riscv64")


def test_a_foreign_guest_is_always_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHAMI_ACCEL", "kvm")
    other = "aarch64" if qemu.needs_emulation("aarch64") else "x86_64"
    assert qemu.choose_accel(other) == "tcg"


def test_qemu_accepts_the_aarch64_machine(tmp_path: Path) -> None:
    """The real qemu-system-aarch64 takes this command line: started paused (-S), asked over QMP, stopped."""
    from archami.vm.qmp import QmpClient

    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(1024 * 1024))
    vars_copy = tmp_path / "vars.fd"
    vars_copy.write_bytes(qemu.AAVMF_VARS.read_bytes())
    spec = _spec(tmp_path, architecture="aarch64", firmware="uefi", ovmf_vars=vars_copy, disk=disk, disk_format="raw",
                 ssh_port=qemu.free_loopback_port())
    proc = subprocess.Popen([*qemu_command(spec), "-S"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not spec.qmp_socket.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with QmpClient(spec.qmp_socket) as qmp:
            cpus = qmp.execute("query-cpus-fast")
            assert [c["target"] for c in cpus] == ["aarch64"] * spec.cpus
            assert qmp.execute("query-target")["arch"] == "aarch64"
            qmp.execute("quit")
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()
