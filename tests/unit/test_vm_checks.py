"""Boot-test checks read recorded guest outputs; SSH argument lists and banner probing on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from archami.vm import checks, ssh

GIB = 1024**3
MIB = 1024**2


def test_hostname_accepts_the_fqdn_or_its_first_label_only() -> None:
    assert checks.check_hostname("ip-10-0-0-15.ec2.internal\n", "ip-10-0-0-15.ec2.internal").ok
    assert checks.check_hostname("ip-10-0-0-15", "ip-10-0-0-15.ec2.internal").ok
    assert not checks.check_hostname("debian", "ip-10-0-0-15.ec2.internal").ok


SSHD_KEY_ONLY = "permitrootlogin without-password\npasswordauthentication no\nkbdinteractiveauthentication no\n"


def test_key_only_ssh_needs_config_and_a_real_refusal() -> None:
    assert checks.check_key_only_ssh(SSHD_KEY_ONLY, ["publickey"]).ok
    yes = SSHD_KEY_ONLY.replace("passwordauthentication no", "passwordauthentication yes")
    assert not checks.check_key_only_ssh(yes, ["publickey"]).ok
    assert not checks.check_key_only_ssh(SSHD_KEY_ONLY, ["publickey", "password"]).ok
    assert not checks.check_key_only_ssh(SSHD_KEY_ONLY, None).ok
    kbd = SSHD_KEY_ONLY.replace("kbdinteractiveauthentication no", "kbdinteractiveauthentication yes")
    assert not checks.check_key_only_ssh(kbd, ["publickey"]).ok
    assert not checks.check_key_only_ssh("", ["publickey"]).ok


def test_offered_methods_from_ssh_refusal() -> None:
    stderr = "root@127.0.0.1: Permission denied (publickey,password).\r\n"
    assert ssh.offered_methods(stderr) == ["publickey", "password"]
    assert ssh.offered_methods("Connection refused") is None


def test_root_read_write() -> None:
    assert checks.check_root_read_write("rw,relatime,discard\n").ok
    assert not checks.check_root_read_write("ro,relatime\n").ok


def test_unit_succeeded_requires_active_success_and_exit_zero() -> None:
    good = "ActiveState=active\nResult=success\nExecMainStatus=0\n"
    assert checks.check_unit_succeeded(good, "a.service").ok
    assert not checks.check_unit_succeeded(good.replace("=active", "=failed"), "a.service").ok
    assert not checks.check_unit_succeeded(good.replace("=success", "=exit-code"), "a.service").ok
    assert not checks.check_unit_succeeded(good.replace("Status=0", "Status=1"), "a.service").ok
    # A unit that does not exist: systemctl show prints inactive/success.
    assert not checks.check_unit_succeeded("ActiveState=inactive\nResult=success\n", "a.service").ok


def test_failed_units_listed() -> None:
    assert checks.check_no_failed_units("").ok
    result = checks.check_no_failed_units("foo.service loaded failed failed Foo\n")
    assert not result.ok and result.detail == "foo.service"


def _geometry(start: int, size: int, disk: int, fs_bytes: int) -> str:
    sectors = f"{start // 512} {size // 512} {disk // 512}\n"
    return sectors + f"Block count:              {fs_bytes // 4096}\nBlock size:               4096\n"


def test_root_fills_a_grown_volume() -> None:
    start = 66 * MIB
    size = 4 * GIB - start - MIB
    ok = checks.check_root_fills_disk(_geometry(start, size, 4 * GIB, size), 4 * GIB)
    assert ok.ok, ok.detail


def test_root_that_did_not_grow_is_caught() -> None:
    start = 66 * MIB
    size = 2 * GIB - start - MIB  # the partition still ends where the 2 GiB image ended
    result = checks.check_root_fills_disk(_geometry(start, size, 4 * GIB, size), 4 * GIB)
    assert not result.ok and "before the end" in result.detail


def test_filesystem_not_resized_after_the_partition_is_caught() -> None:
    start = 66 * MIB
    size = 4 * GIB - start - MIB
    result = checks.check_root_fills_disk(_geometry(start, size, 4 * GIB, 2 * GIB - start), 4 * GIB)
    assert not result.ok and "smaller than its partition" in result.detail


def test_volume_of_the_wrong_size_and_garbage_are_caught() -> None:
    assert not checks.check_root_fills_disk(_geometry(MIB, 2 * GIB - 2 * MIB, 2 * GIB, 2 * GIB - 2 * MIB), 4 * GIB).ok
    assert not checks.check_root_fills_disk("cat: /sys/dev/block/x: No such file\n", 4 * GIB).ok


def test_probe_script_sections_round_trip() -> None:
    script = checks.probe_script("archami-firstboot.service")
    assert "systemctl show -p ActiveState -p Result -p ExecMainStatus archami-firstboot.service" in script
    fake_output = "".join(f"{checks.SECTION_MARK}{name}\nout of {name}\n" for name in checks.GUEST_PROBES)
    sections = checks.split_sections(fake_output)
    assert sections == {name: f"out of {name}\n" for name in checks.GUEST_PROBES}
    assert checks.split_sections("") == dict.fromkeys(checks.GUEST_PROBES, "")


def test_probe_script_runs_in_a_real_shell() -> None:
    import subprocess

    out = subprocess.run(["sh", "-c", checks.probe_script("no-such-unit.service")], capture_output=True, text=True)
    sections = checks.split_sections(out.stdout)
    assert sections["kernel"].strip() == subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip()
    assert set(sections) == set(checks.GUEST_PROBES)


def test_ssh_argv_uses_only_the_given_key_and_never_a_password(tmp_path: Path) -> None:
    argv = ssh.ssh_argv(2222, tmp_path / "key", "uname -r")
    assert argv[0] == "ssh" and argv[-2:] == ["root@127.0.0.1", "uname -r"]
    joined = " ".join(argv)
    for option in ("StrictHostKeyChecking=no", "PasswordAuthentication=no", "BatchMode=yes", "IdentitiesOnly=yes"):
        assert option in joined
    assert argv[argv.index("-i") + 1] == str(tmp_path / "key")
    assert argv[argv.index("-p") + 1] == "2222"


def test_generate_keypair_makes_an_ed25519_key(tmp_path: Path) -> None:
    key = ssh.generate_keypair(tmp_path / "k")
    assert key.public_line.startswith("ssh-ed25519 ") and key.public_line.endswith(" archami-boot-test")
    assert key.private.stat().st_mode & 0o077 == 0
    again = ssh.generate_keypair(tmp_path / "k")
    assert again.public_line != key.public_line


@pytest.fixture
def tcp_server() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server answering each connection with the next canned greeting."""
    greetings: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                if greetings:
                    conn.sendall(greetings.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], greetings
    server.close()


def test_banner_only_counts_a_real_ssh_identification(tcp_server: tuple[int, list[bytes]]) -> None:
    port, greetings = tcp_server
    greetings += [b"", b"HTTP/1.1 400 Bad\r\n", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"]
    assert ssh.read_banner(port, timeout=1) is None  # accepted then closed: QEMU's forward before sshd is up
    assert ssh.read_banner(port, timeout=1) is None
    assert ssh.read_banner(port, timeout=1) == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"


def test_banner_on_a_closed_port_is_none() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert ssh.read_banner(port, timeout=1) is None
