"""The EC2 steps applied to a temporary directory root (no root privileges, no chroot)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from archami.config import parse_definition
from archami.config.matrix import expand
from archami.distro.base import BuildContext
from archami.distro.debian import DebianBackend
from archami.errors import ArchamiError
from archami.image import steps
from archami.image.layout import MIB, plan_layout

BASE = """
name = "t"
distro = "debian"
release = "bookworm"
hostname = "box"
kernel = { stable = "linux-image-cloud-amd64" }
"""


def _env(tmp_path: Path, extra: str = "") -> steps.StepEnv:
    definition = parse_definition(BASE + extra)
    variant = expand(definition)[0]
    root = tmp_path / "root"
    for d in ("etc/ssh", "etc/default", "root/.ssh", "home/admin/.ssh", "tmp", "var/tmp", "var/log/apt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n")
    (root / "etc/shadow").write_text("root:$6$salt$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    ctx = BuildContext(variant, root, tmp_path, tmp_path / "cache", logging.getLogger("t"))
    layout = plan_layout(2048 * MIB, virtualization="hvm", esp_size=64 * MIB, seed="s")
    return steps.StepEnv(ctx, DebianBackend(), layout, "root=UUID=x ro")


def test_fstab_mounts_root_and_esp_by_uuid(tmp_path: Path) -> None:
    env = _env(tmp_path)
    steps.write_fstab(env)
    fstab = (env.root / "etc/fstab").read_text()
    assert f"UUID={env.layout.root.fs_uuid}\t/\text4\tdefaults,discard\t0\t1" in fstab
    assert f"UUID={env.layout.part('esp').fs_uuid}\t/boot/efi\tvfat" in fstab
    esp_options = next(line.split("\t")[3] for line in fstab.splitlines() if "\t/boot/efi\t" in line).split(",")
    # Mounted on first access, so a slow udev can never leave /boot/efi a plain directory of the root fs.
    assert "nofail" in esp_options and "x-systemd.automount" in esp_options
    assert not [o for o in esp_options if o.startswith("x-systemd.device-timeout")]


def test_networkd_dhcp_on_any_nic_never_gives_up(tmp_path: Path) -> None:
    env = _env(tmp_path)
    steps.configure_network(env)
    text = (env.root / "etc/systemd/network/80-archami-dhcp.network").read_text()
    assert "[Match]\nType=ether\n" in text
    assert "DHCP=yes" in text and "MaxAttempts=infinity" in text
    # The seed's options, as option codes.
    assert "RequestOptions=1 28 2 3 15 6 12 26 81\n" in text


def test_dhclient_stack_requests_the_options_and_retries(tmp_path: Path) -> None:
    env = _env(tmp_path, '[network]\nstack = "dhclient"\ndhcp_options = ["routers", "interface-mtu"]\n')
    steps.configure_network(env)
    assert "request routers, interface-mtu;" in (env.root / "etc/dhcp/dhclient.conf").read_text()
    unit = (env.root / "etc/systemd/system/archami-dhclient.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "Restart=always" in unit and " -1" not in exec_start
    link = env.root / "etc/systemd/system/multi-user.target.wants/archami-dhclient.service"
    assert link.is_symlink()


def test_unknown_dhcp_option_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArchamiError, match=r"network\.dhcp_options.*coffee"):
        _env(tmp_path, '[network]\ndhcp_options = ["coffee"]\n')  # the schema refuses it
    for writer in (steps.networkd_config, steps.dhclient_config):  # and so do the writers, on their own
        with pytest.raises(ArchamiError, match="coffee"):
            writer(["routers", "coffee"])


def test_sshd_is_key_only(tmp_path: Path) -> None:
    env = _env(tmp_path, '[ssh]\npermit_root_login = "no"\nhost_key_types = ["ed25519"]\n')
    steps.configure_sshd(env)
    text = (env.root / "etc/ssh/sshd_config.d/10-archami.conf").read_text()
    for line in ("PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no",
                 "HostKey /etc/ssh/ssh_host_ed25519_key"):
        assert line + "\n" in text
    assert "ecdsa" not in text


def test_sshd_include_is_added_first_when_missing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (env.root / "etc/ssh/sshd_config").write_text("PasswordAuthentication yes\n")
    steps.configure_sshd(env)
    assert (env.root / "etc/ssh/sshd_config").read_text().startswith("Include /etc/ssh/sshd_config.d/*.conf\n")


def test_sshd_after_network_drop_in(tmp_path: Path) -> None:
    env = _env(tmp_path)
    steps.order_sshd_after_network(env)
    drop_in = env.root / "etc/systemd/system/ssh.service.d/10-archami-after-network.conf"
    assert "[Unit]\nAfter=network.target\n" in drop_in.read_text()
    env2 = _env(tmp_path / "off", "[ssh]\nafter_network = false\n")
    steps.order_sshd_after_network(env2)
    assert not (env2.root / "etc/systemd/system/ssh.service.d").exists()


def test_definition_files_and_symlinks(tmp_path: Path) -> None:
    env = _env(tmp_path, """
[[files]]
path = "/etc/motd"
content = "hello\\n"
mode = "0600"
[[files]]
path = "/usr/bin/pinentry"
symlink = "pinentry-curses"
""")
    steps.write_definition_files(env)
    motd = env.root / "etc/motd"
    assert motd.read_text() == "hello\n" and (motd.stat().st_mode & 0o777) == 0o600
    assert os.readlink(env.root / "usr/bin/pinentry") == "pinentry-curses"


def test_files_never_escape_the_root_through_an_absolute_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    env = _env(tmp_path, '[[files]]\npath = "/escape/x.conf"\ncontent = "x"\n')
    (env.root / "escape").symlink_to(str(outside))  # absolute: means <root>/<outside> inside the image
    steps.write_definition_files(env)
    assert not (outside / "x.conf").exists()
    assert (env.root / str(outside).lstrip("/") / "x.conf").read_text() == "x"


def test_hostname_timezone_locale(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (env.root / "etc/localtime").write_text("host zone")
    steps.set_hostname(env)
    steps.set_timezone(env)
    steps.set_locale(env)
    assert (env.root / "etc/hostname").read_text() == "box\n"
    assert "127.0.1.1\tbox\n" in (env.root / "etc/hosts").read_text()
    assert not (env.root / "etc/localtime").exists()  # UTC without tzdata: systemd's default
    assert (env.root / "etc/default/locale").read_text() == "LANG=C.UTF-8\n"


def test_timezone_needs_tzdata(tmp_path: Path) -> None:
    env = _env(tmp_path, 'timezone = "Europe/Paris"\n')
    with pytest.raises(ArchamiError, match="tzdata"):
        steps.set_timezone(env)
    (env.root / "usr/share/zoneinfo/Europe").mkdir(parents=True)
    (env.root / "usr/share/zoneinfo/Europe/Paris").write_bytes(b"TZif")
    steps.set_timezone(env)
    assert os.readlink(env.root / "etc/localtime") == "/usr/share/zoneinfo/Europe/Paris"


def test_remove_secrets_leaves_nothing_that_identifies_or_grants_access(tmp_path: Path) -> None:
    env = _env(tmp_path)
    planted = [
        "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub", "root/.ssh/authorized_keys",
        "home/admin/.ssh/authorized_keys", "root/.bash_history", "home/admin/.python_history",
        "var/lib/dbus/machine-id", "etc/shadow-", "root/.gnupg/private-keys-v1.d/k.key",
        "etc/pacman.d/gnupg/secring.gpg", "tmp/build-scratch", "var/tmp/x/y",
    ]
    for rel in planted:
        (env.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (env.root / rel).write_text("secret")
    (env.root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (env.root / "var/log/apt/history.log").write_text("Commandline: apt-get install ...")
    (env.root / "etc/resolv.conf").write_text("nameserver 10.1.2.3\n")
    steps.remove_secrets(env)
    for rel in planted:
        assert not (env.root / rel).exists(), rel
    assert (env.root / "etc/machine-id").read_text() == ""
    assert (env.root / "var/log/apt/history.log").read_text() == ""
    assert "10.1.2.3" not in (env.root / "etc/resolv.conf").read_text()
    shadow = (env.root / "etc/shadow").read_text().splitlines()
    assert shadow[0].split(":")[1] == "!*"
    assert shadow[1].split(":")[1] == "*"
    assert list((env.root / "tmp").iterdir()) == []


def test_steps_are_named_and_ordered() -> None:
    names = [steps.step_name(s) for s in steps.EC2_STEPS]
    assert len(names) == len(set(names))
    # fstab before the initramfs (its fsck hook reads it); boot config after it (needs the initrd name);
    # secrets go last.
    assert names.index("write_fstab") < names.index("regenerate_initramfs") < names.index("write_boot_config")
    assert names[-1] == "remove_secrets"


def test_deferred_unit_moves_to_multi_user_target(tmp_path: Path) -> None:
    from archami.image.steps import defer_unit

    system = tmp_path / "etc/systemd/system"
    (system / "sysinit.target.wants").mkdir(parents=True)
    (system / "sysinit.target.wants/systemd-resolved.service").symlink_to(
        "/usr/lib/systemd/system/systemd-resolved.service"
    )
    defer_unit(tmp_path, "systemd-resolved.service")
    assert not (system / "sysinit.target.wants/systemd-resolved.service").is_symlink()
    moved = system / "multi-user.target.wants/systemd-resolved.service"
    assert os.readlink(moved) == "/usr/lib/systemd/system/systemd-resolved.service"
    with pytest.raises(ArchamiError, match="not enabled"):
        defer_unit(tmp_path, "rngd.service")
