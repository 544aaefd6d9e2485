"""Per-instance semantics, the fix for the seed's caveat: an AMI made from a running instance must not
carry the first instance's identity. Running the agent twice in one root with two instance-ids changes the
host keys, the machine-id, the pacman keyring's master key (real pacman-key, --gpgdir inside the root) and
replaces authorized_keys; running it again for the same instance changes nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from agent_support import (
    ROOT_MACHINE_ID,
    authorized_keys,
    host_key_fingerprints,
    leftovers,
    make_root,
    new_key,
    run_agent,
)

from archami.vm.imds import ImdsConfig, ImdsServer

pytestmark = pytest.mark.integration

GPGDIR = "etc/pacman.d/gnupg"
USER_DATA = b"#!/bin/sh\necho \"user-data for $ARCHAMI_INSTANCE_ID\"\n"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """gpg-agent's socket path must fit in 108 bytes: pytest's tmp_path is too deep for a root's gnupg dir."""
    path = Path(tempfile.mkdtemp(prefix="fb", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def arch_root(tmp_path: Path, **settings: object) -> Path:
    root = make_root(tmp_path, "arch.toml", **settings)
    (root / "etc/pacman.conf").write_text("[options]\nGPGDir = /etc/pacman.d/gnupg/\n")
    lists = root / "usr/share/ec2-pacman-mirrors"
    lists.mkdir(parents=True)
    for region in ("us-east-1", "eu-west-1"):
        (lists / f"{region}.mirrorlist").write_text(f"Server = http://{region}.mirror.test/$repo/os/$arch\n")
    (lists / "global.mirrorlist").write_text("Server = http://global.mirror.test/$repo/os/$arch\n")
    return root


def master_keys(root: Path) -> list[str]:
    gpgdir = str(root / GPGDIR)
    try:
        out = subprocess.run(["gpg", "--homedir", gpgdir, "--batch", "--with-colons", "--list-secret-keys"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", gpgdir, "--kill", "all"], capture_output=True, check=False)
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")][:1]


@dataclass(frozen=True)
class Snapshot:
    host_keys: dict[str, str]
    machine_id: str
    authorized_keys: str | None
    master_key: list[str]
    hostname: str
    mirrorlist: str


def snapshot(root: Path) -> Snapshot:
    return Snapshot(
        host_keys=host_key_fingerprints(root),
        machine_id=(root / "etc/machine-id").read_text().strip(),
        authorized_keys=authorized_keys(root),
        master_key=master_keys(root),
        hostname=(root / "etc/hostname").read_text().strip(),
        mirrorlist=(root / "etc/pacman.d/mirrorlist").read_text(),
    )


def test_second_instance_gets_its_own_identity(tmp_path: Path, short_tmp: Path) -> None:
    root = arch_root(short_tmp, pacman_keyrings=[])
    alice, bob = new_key(tmp_path, "alice"), new_key(tmp_path, "bob")
    first = ImdsConfig(instance_id="i-0aaaaaaaaaaaaaaa1", region="us-east-1", availability_zone="us-east-1a",
                       hostname="ip-10-0-0-1.ec2.internal", public_keys={"alice": alice}, user_data=USER_DATA)
    with ImdsServer(first) as server:
        run = run_agent(root, [server.url], deadline=10)
        assert run.returncode == 0, run.stderr
        one = snapshot(root)
        assert one.authorized_keys == alice + "\n"
        assert one.machine_id == ROOT_MACHINE_ID  # the first instance keeps the id systemd gave it
        assert set(one.host_keys) == {f"ssh_host_{t}_key.pub" for t in ("ed25519", "ecdsa", "rsa")}
        assert len(one.master_key) == 1
        assert one.hostname == "ip-10-0-0-1"
        assert "us-east-1.mirror.test" in one.mirrorlist

        # A reboot of the same instance changes nothing, and keeps what the user added by hand.
        with (root / "root/.ssh/authorized_keys").open("a") as keys:
            keys.write(bob + "\n")
        run = run_agent(root, [server.url], deadline=10)
        assert run.returncode == 0, run.stderr
        again = snapshot(root)
        assert again == replace(one, authorized_keys=f"{alice}\n{bob}\n")

        # An AMI made from this instance boots as a new one: new instance-id, another user's key.
        server.set_config(ImdsConfig(instance_id="i-0bbbbbbbbbbbbbbb2", region="eu-west-1",
                                     availability_zone="eu-west-1b", hostname="ip-10-0-0-2.ec2.internal",
                                     public_keys={"bob": bob}, user_data=USER_DATA))
        run = run_agent(root, [server.url], deadline=10)
    assert run.returncode == 0, run.stderr
    two = snapshot(root)
    assert two.authorized_keys == bob + "\n"  # the first user's key is gone
    assert two.machine_id != one.machine_id and re.fullmatch(r"[0-9a-f]{32}", two.machine_id)
    assert set(two.host_keys) == set(one.host_keys)
    assert all(two.host_keys[name] != one.host_keys[name] for name in one.host_keys)
    assert two.master_key != one.master_key and len(two.master_key) == 1
    assert two.hostname == "ip-10-0-0-2"
    assert "eu-west-1.mirror.test" in two.mirrorlist
    state = json.loads((root / "var/lib/archami/firstboot/state.json").read_text())
    assert state["previous_instance_id"] == "i-0aaaaaaaaaaaaaaa1"
    log = (root / "var/log/archami/user-data.log").read_text()
    assert log.count("user-data for i-0aaaaaaaaaaaaaaa1") == 1  # once per instance, not per boot
    assert log.count("user-data for i-0bbbbbbbbbbbbbbb2") == 1
    assert leftovers(root) == []
    assert not list((root / "etc/pacman.d").glob("gnupg.archami-*"))


def test_keyring_failure_leaves_no_keyring(tmp_path: Path) -> None:
    """Under a path too long for gpg-agent's socket, gpg makes no key while pacman-key still exits 0: the
    agent notices, fails the step, and leaves neither a keyring nor a half-built directory."""
    deep = tmp_path / ("d" * 60)
    root = arch_root(deep, pacman_keyrings=[])
    run = run_agent(root, [], phase="keyring")
    assert run.returncode == 1
    assert "made no master key" in str(run.steps)
    assert not (root / GPGDIR).exists()
    assert not list((root / "etc/pacman.d").glob("gnupg.archami-*"))


def test_keyring_populated_from_the_archlinux_keyring(short_tmp: Path) -> None:
    """pacman-key --populate, non-interactively: the packagers' keys imported and the master keys trusted.

    pacman-key reads keyrings from its own keyring directory (the host's archlinux-keyring here; the
    image's /usr/share/pacman/keyrings on a real boot)."""
    root = arch_root(short_tmp, pacman_keyrings=["archlinux"])
    run = run_agent(root, [], phase="keyring")
    assert run.returncode == 0, run.stderr
    assert "populated archlinux" in str(run.steps)
    gpgdir = str(root / GPGDIR)
    try:
        out = subprocess.run(["gpg", "--homedir", gpgdir, "--batch", "--with-colons", "--list-keys"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", gpgdir, "--kill", "all"], capture_output=True, check=False)
    public = [line for line in out.splitlines() if line.startswith("pub:")]
    assert len(public) > 10
    assert any(line.split(":")[1] == "f" for line in public)  # lsigned by the local master key: full validity
