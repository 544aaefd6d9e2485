"""The audit catches each forbidden item, planted in a root directory and in a small GPT disk image whose
ext4 root is made with `mkfs.ext4 -d` (no mounts, no root privileges needed), and passes a clean one."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from archami.audit import AuditError, audit_image, audit_root
from archami.audit.ext4 import Ext4View, ext4_partitions

SSHD_CONFIG = """\
# Debian's layout: drop-ins first, so their values win (sshd keeps the first value it reads)
Include /etc/ssh/sshd_config.d/*.conf
KbdInteractiveAuthentication no
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def make_clean_root(root: Path) -> Path:
    """A root that passes: what a good build leaves behind."""
    files = {
        "etc/ssh/sshd_config": SSHD_CONFIG,
        "etc/ssh/sshd_config.d/50-archami.conf": "PasswordAuthentication no\nPermitRootLogin prohibit-password\n",
        "etc/ssh/ssh_config": "Host *\n",
        "etc/shadow": "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\nadmin:!:20000::::::\n",
        "etc/machine-id": "",
        "etc/hostname": "debian\n",
        "etc/os-release": 'ID=debian\nVERSION_CODENAME=bookworm\n',
        "etc/pacman.d/gnupg/pubring.gpg": "public keys only",
        "etc/pacman.d/gnupg/trustdb.gpg": "trust",
        "root/.bashrc": "# ~/.bashrc\n",
        "root/.bash_history": "",  # empty history files are harmless
        "root/.ssh/authorized_keys": "",
        "var/cache/apt/archives/lock": "",
        "etc/apt/apt.conf.d/70debconf": 'DPkg::Pre-Install-Pkgs {"/usr/sbin/dpkg-preconfigure --apt";};\n',
        "etc/apt/apt.conf.d/99mmdebstrap": 'APT::Install-Recommends "false";\nAcquire::Languages "none";\n',
        # A bootable system: kernel, init (merged /usr: /usr/sbin/init -> systemd), SSH server.
        "boot/vmlinuz-6.1.0-test": "kernel",
        "usr/lib/systemd/systemd": "init",
        "usr/sbin/sshd": "sshd",
        "etc/ssl/certs/ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for rel in ("tmp", "var/tmp", "var/cache/apt/archives/partial", "etc/pacman.d/gnupg/private-keys-v1.d"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    (root / "etc/resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
    (root / "var/lib/dbus").mkdir(parents=True)
    (root / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    (root / "usr/sbin/init").symlink_to("../lib/systemd/systemd")
    (root / "vmlinuz").symlink_to("boot/vmlinuz-6.1.0-test")
    return root


def write(root: Path, rel: str, content: str = "x") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


PEM_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
AWS_CREDENTIALS = "[default]\naws_access_key_id = ASIA" + "Z" * 16 + "\naws_secret_access_key = " + "k" * 40 + "\n"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBToo2dJ1EQJB1wYHk6SCjOoTvb5Lx0FtcszFvPz3SyM someone\n"

# name -> (how to plant it, rule that must fire, path it must name)
PLANTS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "root authorized_keys": (lambda r: write(r, "root/.ssh/authorized_keys", PUBKEY), "ssh-authorized-keys",
                             "/root/.ssh/authorized_keys"),
    "user authorized_keys2": (lambda r: write(r, "home/admin/.ssh/authorized_keys2", PUBKEY),
                              "ssh-authorized-keys", "/home/admin/.ssh/authorized_keys2"),
    "authorized_keys in an odd place": (lambda r: write(r, "srv/app/authorized_keys", PUBKEY),
                                        "ssh-authorized-keys", "/srv/app/authorized_keys"),
    "ssh host private key": (lambda r: write(r, "etc/ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH"),
                             "ssh-host-key", "/etc/ssh/ssh_host_ed25519_key"),
    "ssh host public key": (lambda r: write(r, "etc/ssh/ssh_host_rsa_key.pub", "ssh-rsa AAAA"),
                            "ssh-host-key", "/etc/ssh/ssh_host_rsa_key.pub"),
    "user ssh private key": (lambda r: write(r, "root/.ssh/id_ed25519", "-----BEGIN OPENSSH"),
                             "ssh-private-key", "/root/.ssh/id_ed25519"),
    "machine-id": (lambda r: write(r, "etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
                   "machine-id", "/etc/machine-id"),
    "dbus machine-id copy": (lambda r: (os.unlink(r / "var/lib/dbus/machine-id"),
                                        write(r, "var/lib/dbus/machine-id", "0123456789abcdef\n"))[-1],
                             "machine-id", "/var/lib/dbus/machine-id"),
    "pacman keyring master key": (lambda r: write(r, "etc/pacman.d/gnupg/private-keys-v1.d/ABCD.key", "(key)"),
                                  "gnupg-secret-key", "/etc/pacman.d/gnupg/private-keys-v1.d/ABCD.key"),
    "user gnupg secret key": (lambda r: write(r, "home/admin/.gnupg/private-keys-v1.d/EF01.key", "(key)"),
                              "gnupg-secret-key", "/home/admin/.gnupg/private-keys-v1.d/EF01.key"),
    "old gnupg secring": (lambda r: write(r, "root/.gnupg/secring.gpg", "secret"), "gnupg-secret-key",
                          "/root/.gnupg/secring.gpg"),
    "bash history": (lambda r: write(r, "root/.bash_history", "ls\nsudo passwd\n"), "shell-history",
                     "/root/.bash_history"),
    "zsh history of a user": (lambda r: write(r, "home/admin/.zsh_history", ": 1:0;ls\n"), "shell-history",
                              "/home/admin/.zsh_history"),
    "root password hash": (lambda r: write(r, "etc/shadow", "root:$6$salt$hash:20000:0:99999:7:::\n"),
                           "password-hash", "/etc/shadow"),
    "locked user with a hash": (lambda r: write(r, "etc/shadow", "root:*:1::::::\nadmin:!$y$j9T$x$y:1::::::\n"),
                                "password-hash", "/etc/shadow"),
    "empty root password": (lambda r: write(r, "etc/shadow", "root::20000:0:99999:7:::\n"), "empty-password",
                            "/etc/shadow"),
    "password auth in a drop-in": (lambda r: write(r, "etc/ssh/sshd_config.d/10-cloud.conf",
                                                   "PasswordAuthentication yes\n"),
                                   "ssh-password-authentication", "/etc/ssh/sshd_config.d/10-cloud.conf"),
    "no PasswordAuthentication anywhere (default yes)": (
        lambda r: write(r, "etc/ssh/sshd_config.d/50-archami.conf", "PermitRootLogin prohibit-password\n"),
        "ssh-password-authentication", "OpenSSH default"),
    "password auth in a Match block": (lambda r: write(r, "etc/ssh/sshd_config", SSHD_CONFIG +
                                                       "Match User admin\n  PasswordAuthentication yes\n"),
                                       "ssh-password-authentication", "/etc/ssh/sshd_config"),
    "resolv.conf with static nameservers": (lambda r: (os.unlink(r / "etc/resolv.conf"),
                                                       write(r, "etc/resolv.conf", "nameserver 10.9.8.7\n"))[-1],
                                            "build-host-leftover", "/etc/resolv.conf"),
    "build host name": (lambda r: write(r, "etc/hostname", socket.gethostname() + "\n"), "build-host-leftover",
                        "/etc/hostname"),
    "policy-rc.d": (lambda r: write(r, "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n"), "build-host-leftover",
                    "/usr/sbin/policy-rc.d"),
    "file left in /tmp": (lambda r: write(r, "tmp/build-script.sh", "echo"), "build-host-leftover",
                          "/tmp/build-script.sh"),
    "apt proxy": (lambda r: write(r, "etc/apt/apt.conf.d/01proxy", 'Acquire::http::Proxy "http://10.0.0.1:3142";\n'),
                  "build-host-leftover", "/etc/apt/apt.conf.d/01proxy"),
    "apt cache dir of the build": (lambda r: write(r, "etc/apt/apt.conf.d/99mmdebstrap",
                                                   'Dir::Cache::Archives "/var/cache/archami/debs";\n'),
                                   "build-host-leftover", "/etc/apt/apt.conf.d/99mmdebstrap"),
    "apt package cache": (lambda r: write(r, "var/cache/apt/archives/bash_5.2_amd64.deb", "!<arch>"),
                          "package-cache", "/var/cache/apt/archives/bash_5.2_amd64.deb"),
    "pacman package cache": (lambda r: write(r, "var/cache/pacman/pkg/bash-5.2-1-x86_64.pkg.tar.zst", "z"),
                             "package-cache", "/var/cache/pacman/pkg/bash-5.2-1-x86_64.pkg.tar.zst"),
    # Found by content, whatever the file is called.
    "PEM private key under another name": (lambda r: write(r, "etc/ssl/private/site.pem", PEM_KEY), "private-key",
                                           "/etc/ssl/private/site.pem"),
    "PEM key in a user's backup": (lambda r: write(r, "home/admin/backup.txt", "notes\n" + PEM_KEY), "private-key",
                                   "/home/admin/backup.txt"),
    "AWS access key in a config": (lambda r: write(r, "root/.aws/credentials", AWS_CREDENTIALS), "aws-access-key",
                                   "/root/.aws/credentials"),
    "AWS key in an environment file": (lambda r: write(r, "etc/default/app", "KEY_ID=AKIA" + "Q" * 16 + "\n"),
                                       "aws-access-key", "/etc/default/app"),
    "GitHub token in a script": (lambda r: write(r, "usr/local/bin/deploy", "curl -H 'x: ghp_" + "a1" * 18 + "'\n"),
                                 "secret-token", "/usr/local/bin/deploy"),
    "history with a token (odd name)": (lambda r: write(r, "root/.local/share/fish/fish_history",
                                                        "- cmd: export GITHUB_TOKEN=abc123\n"),
                                        "secret-in-history", "/root/.local/share/fish/fish_history"),
    "no kernel": (lambda r: (os.unlink(r / "vmlinuz"), os.unlink(r / "boot/vmlinuz-6.1.0-test"))[-1],
                  "not-bootable", "/vmlinuz"),
    "no init": (lambda r: os.unlink(r / "usr/lib/systemd/systemd"), "not-bootable", "/sbin/init"),
    "no sshd": (lambda r: os.unlink(r / "usr/sbin/sshd"), "not-bootable", "/usr/sbin/sshd"),
}


def disk_image(root: Path, image: Path, size_mib: int = 48) -> Path:
    """A GPT disk whose second partition is an ext4 made from `root` with mkfs.ext4 -d, written in place."""
    with image.open("wb") as handle:
        handle.truncate(size_mib * 1024 * 1024)
    table = "label: gpt\nstart=2048, size=4096, type=21686148-6449-6E6F-744E-656564454649\n" \
            "start=6144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=table, text=True, check=True)
    fs_kib = (size_mib * 1024) - 3 * 1024 - 17  # partition from 3 MiB to the GPT backup header
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-d", str(root), "-E", f"offset={6144 * 512}", str(image), f"{fs_kib}k"],
        check=True, capture_output=True,
    )
    return image


def test_clean_root_passes(tmp_path: Path) -> None:
    report = audit_root(make_clean_root(tmp_path / "root"))
    assert report.ok, report.findings
    assert "ssh-authorized-keys" in report.checked_rules


def test_clean_image_passes_and_reads_the_root_partition(tmp_path: Path) -> None:
    image = disk_image(make_clean_root(tmp_path / "root"), tmp_path / "disk.raw")
    before = image.stat().st_mtime_ns
    report = audit_image(image)
    assert report.ok, report.findings
    assert report.root_partition == 2
    assert image.stat().st_mtime_ns == before  # read-only


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_planted_item_is_caught_in_a_root_and_in_an_image(tmp_path: Path, plant: str) -> None:
    make_it, rule, path = PLANTS[plant]
    root = make_clean_root(tmp_path / "root")
    make_it(root)
    for report in (audit_root(root), audit_image(disk_image(root, tmp_path / "disk.raw"))):
        assert not report.ok
        hits = [f for f in report.findings if f.rule == rule]
        assert hits, f"{plant}: {report.findings}"
        assert any(path in (f.path, f.detail) or path in f.detail for f in hits), hits


def test_copied_host_resolv_conf_is_named_as_such(tmp_path: Path) -> None:
    root = make_clean_root(tmp_path / "root")
    os.unlink(root / "etc/resolv.conf")
    write(root, "etc/resolv.conf", "nameserver 127.0.0.53\nsearch build.example\n")
    fake_host = tmp_path / "host"
    write(fake_host, "etc/resolv.conf", "nameserver 127.0.0.53\nsearch build.example\n")
    from archami.audit.fsview import RootView
    from archami.audit.rules import host_leftovers

    details = [f.detail for f in host_leftovers(RootView(root), host_root=fake_host)]
    assert details == ["copied from the build host"]


def test_drop_in_order_decides_like_sshd(tmp_path: Path) -> None:
    """sshd keeps the first value: a 'yes' after the drop-in's 'no' changes nothing, one before it does."""
    root = make_clean_root(tmp_path / "root")
    write(root, "etc/ssh/sshd_config", SSHD_CONFIG + "PasswordAuthentication yes\n")
    assert audit_root(root).ok
    write(root, "etc/ssh/sshd_config", "PasswordAuthentication=yes\n" + SSHD_CONFIG)
    report = audit_root(root)
    assert [f.path for f in report.findings] == ["/etc/ssh/sshd_config"]
    write(root, "etc/ssh/sshd_config", "passwordauthentication yes\n" + SSHD_CONFIG)
    write(root, "etc/ssh/sshd_config.d/00-first.conf", "PasswordAuthentication no\n")
    assert not audit_root(root).ok  # the main file's own line comes before its Include


def test_image_without_partition_table_is_read_as_a_filesystem(tmp_path: Path) -> None:
    root = make_clean_root(tmp_path / "root")
    write(root, "root/.ssh/authorized_keys", PUBKEY)
    fs = tmp_path / "fs.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs), "16M"], check=True, capture_output=True)
    report = audit_image(fs)
    assert [f.rule for f in report.findings] == ["ssh-authorized-keys"]
    assert report.root_partition is None


def test_symlinked_config_is_followed_inside_the_image_not_on_the_host(tmp_path: Path) -> None:
    root = make_clean_root(tmp_path / "root")
    write(root, "usr/share/ssh/custom.conf", "PasswordAuthentication yes\n")
    os.unlink(root / "etc/ssh/sshd_config.d/50-archami.conf")
    (root / "etc/ssh/sshd_config.d/50-archami.conf").symlink_to("/usr/share/ssh/custom.conf")
    image = disk_image(root, tmp_path / "disk.raw")
    for report in (audit_root(root), audit_image(image)):
        assert [f.rule for f in report.findings] == ["ssh-password-authentication"], report.findings


def test_ext4_view_lists_the_whole_tree(tmp_path: Path) -> None:
    root = make_clean_root(tmp_path / "root")
    write(root, "a/b/c/d/e/f/deep.txt", "deep")
    image = disk_image(root, tmp_path / "disk.raw")
    (partition,) = ext4_partitions(image)
    view = Ext4View(image, partition.offset)
    paths = {e.path for e in view.entries()}
    expected = {"/" + str(p.relative_to(root)) for p in root.rglob("*")}
    assert expected <= paths
    assert view.read("/a/b/c/d/e/f/deep.txt") == b"deep"
    assert view.readlink("/etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"


def test_not_an_image_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.raw"
    junk.write_bytes(b"\0" * 4 * 1024 * 1024)
    with pytest.raises(AuditError, match="no ext4"):
        audit_image(junk)
    with pytest.raises(AuditError, match="no such image"):
        audit_image(tmp_path / "missing.raw")


def test_an_image_holding_only_motd_is_not_bootable(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "etc/motd", "hello\n")
    report = audit_image(disk_image(root, tmp_path / "disk.raw"))
    assert not report.ok
    assert sorted(f.detail.split(" (")[0] for f in report.findings if f.rule == "not-bootable") == [
        "no SSH server", "no init", "no kernel"]
