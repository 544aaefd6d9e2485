"""Arch end to end without an Arch mirror: examples/arch.toml's ebs-hvm-x86_64 variant built from the
Arch-shaped test repository (tests/archshaped), audited, booted under BIOS and UEFI against the local IMDS,
checked from inside the guest, and booted again as a second instance of the same disk (a derived AMI).

The guest reaches two loopback HTTP servers through QEMU guestfwd relays (the VM's network is restricted):
the shaped mirror at MIRROR_ADDRESS (named only in the region's mirror list, so a working `pacman -Sy`
proves the first-boot agent chose it) and the `ec2` repository at REPO_ADDRESS (its `instance_server`).
The build itself reads both through file:// paths in the cache, so a warm run reuses the built root.

One build (~cold: minutes, warm: the root cache), a BIOS boot with in-guest checks, a UEFI boot, a second
boot: each step's seconds are printed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from archami.artifacts import BuildResult
from archami.audit import audit_image
from archami.config import load_definition, select
from archami.distro.arch_conf import MIRROR_ENV
from archami.distro.arch_keyring import KEYRING_PIN_ENV, key_fingerprints
from archami.errors import ArchamiError
from archami.image.pipeline import build_variant
from archami.pacman.project import build_repository
from archami.vm import ssh
from archami.vm.boot import boot_test, random_instance, run_checks
from archami.vm.guest import Guest, running_guest
from archami.vm.imds import ImdsConfig
from archami.vm.qemu import disk_virtual_size, make_overlay

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from archshaped import repo as shaped_repo  # noqa: E402
from archshaped import serve  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARCH_EXAMPLE = REPO / "examples" / "arch.toml"
VARIANT = "ebs-hvm-x86_64"
CACHE_DIR = Path(os.environ.get("ARCHAMI_TEST_CACHE", "/var/cache/archami"))
BOOT_TIMEOUT = 900
REGION = "eu-west-1"
# Guest-side addresses inside the VM's network (vm.qemu.GUEST_NETWORK), relayed to loopback servers.
MIRROR_ADDRESS = "169.254.169.11"
REPO_ADDRESS = "169.254.169.10"
EXAMPLE_SERVER = 'server = "file:///var/lib/archami/repo/$repo/$arch"'
EXAMPLE_KEY = 'key = "../packages/ec2-keyring/ec2.gpg"'
EXAMPLE_NO_INSTANCES = "\ninstances = false\n"
# The build reads the mirror here (hard links into the shaped cache): a fixed path keeps the build's root cache
# key, and one outside the cache dir, which the audit rightly flags when the instance's mirrorlist names it.
RESOLV_TYPE_CHANGE = "warning: filesystem: /etc/resolv.conf (File type mismatch)"
MIRROR_DIR = Path("/var/tmp/archami-shaped-e2e/mirror")


@dataclass(frozen=True)
class ArchE2E:
    build: BuildResult
    shaped: shaped_repo.ShapedRepository
    ec2_fingerprint: str
    region_list: str
    forwards: tuple[tuple[str, int, int], ...]


def _timed(step: str, started: float) -> None:
    print(f"[arch-shaped] {step}: {time.monotonic() - started:.1f} s", flush=True)


def _project_tree(work: Path, shaped: shaped_repo.ShapedRepository) -> tuple[Path, str]:
    """packages/ with a region mirror list, built into a signed `ec2` repository by `archami repo build`'s
    code with a key of its own; kept in the cache (keyed by packages/ and the agent) so that the key file,
    and with it the build's root cache key, stays the same between runs."""
    packages = work / "packages"
    if not (work / ".complete").is_file():
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(REPO / "packages", packages)
        (packages / "ec2-keyring" / "ec2.gpg").unlink(missing_ok=True)
        # Our key and region list make packages that differ from any other build's of the same version, and
        # the build's package cache (shared, by file name) would offer those: a release of our own avoids that.
        release = f'pkgrel = "1.{int(work.name.rsplit("-", 1)[-1][:6], 16) % 100000}"'
        for toml in packages.glob("*/package.toml"):
            toml.write_text(toml.read_text().replace('pkgrel = "1"', release))
        lists = packages / "ec2-pacman-mirrors" / "mirrorlists"
        (lists / f"{REGION}.mirrorlist").write_text(
            f"# {REGION}: the shaped mirror, reached through the guest's relay\n"
            f"Server = {shaped.mirror_url(f'http://{MIRROR_ADDRESS}')}\n"
        )
        gnupghome = work / "gnupg"
        gnupghome.mkdir(mode=0o700)
        build_repository(
            packages, work / "repo" / "ec2" / "x86_64", gnupghome=gnupghome,
            mirrors=[shaped.mirror_url(f"file://{shaped.root}")],
        )
        (work / ".complete").write_text("ok\n")
    key_file = packages / "ec2-keyring" / "ec2.gpg"
    assert key_file.is_file(), "archami repo build wrote no public key"
    return key_file, key_fingerprints(key_file)[0]


def _tree_digest(*roots: Path) -> str:
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _definition(work: Path, key_file: Path) -> Path:
    """The example file itself, with only the `ec2` repository's addresses substituted."""
    text = ARCH_EXAMPLE.read_text()
    for expected in (EXAMPLE_SERVER, EXAMPLE_KEY, EXAMPLE_NO_INSTANCES):
        assert text.count(expected) == 1, f"examples/arch.toml changed: {expected!r}"
    text = text.replace(EXAMPLE_SERVER, f'server = "file://{work}/repo/$repo/$arch"')
    text = text.replace(EXAMPLE_KEY, f'key = "{key_file}"')
    text = text.replace(EXAMPLE_NO_INSTANCES, f'\ninstance_server = "http://{REPO_ADDRESS}/$repo/$arch"\n')
    definition = work / "arch.toml"
    definition.write_text(text)
    return definition


@pytest.fixture(scope="module")
def arch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchE2E]:
    if os.geteuid() != 0:
        pytest.fail("building an image needs root")
    started = time.monotonic()
    shaped = shaped_repo.make(MIRROR_DIR)
    _timed("shaped mirror", started)
    started = time.monotonic()
    digest = _tree_digest(REPO / "packages", REPO / "src" / "archami" / "firstboot")
    work = CACHE_DIR / "arch-shaped-e2e" / f"project-{digest}"
    key_file, ec2_fingerprint = _project_tree(work, shaped)
    _timed("archami repo build", started)
    definition = _definition(work, key_file)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(MIRROR_ENV, shaped.mirror_url(f"file://{shaped.root}"))
        env.setenv(KEYRING_PIN_ENV, shaped.keyring_pin())
        loaded = load_definition(definition)
        started = time.monotonic()
        build = build_variant(loaded, select(loaded.variants, VARIANT)[0], tmp_path_factory.mktemp("out"), CACHE_DIR)
        _timed("build", started)
    m = build.manifest
    print(f"[arch-shaped] image size {m.image_size} B, used {m.used_bytes} B", flush=True)
    region_list = (work / "packages/ec2-pacman-mirrors/mirrorlists" / f"{REGION}.mirrorlist").read_text()
    with serve.serving(shaped.root) as mirror_url, serve.serving(work / "repo") as repo_url:
        forwards = (
            (MIRROR_ADDRESS, 80, int(mirror_url.rsplit(":", 1)[1])),
            (REPO_ADDRESS, 80, int(repo_url.rsplit(":", 1)[1])),
        )
        yield ArchE2E(build, shaped, ec2_fingerprint, region_list, forwards)


def test_the_image_has_the_ec2_packages_and_audits_clean(arch: ArchE2E) -> None:
    names = {p.name for p in arch.build.manifest.packages}
    assert {"linux", "openssh", "ec2-keyring", "ec2-pacman-mirrors", "archami-firstboot"} <= names
    assert not {"initscripts", "sysvinit"} & names
    report = audit_image(arch.build.image)
    assert report.ok, report.findings


def test_without_the_pin_the_build_names_the_keys_and_the_variable(
    arch: ArchE2E, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shaped archlinux-keyring (which depends on pacman) is signed by a key the host does not know."""
    monkeypatch.setenv(MIRROR_ENV, arch.shaped.mirror_url(f"file://{arch.shaped.root}"))
    monkeypatch.delenv(KEYRING_PIN_ENV, raising=False)
    loaded = load_definition(next(CACHE_DIR.glob("arch-shaped-e2e/project-*/arch.toml")))
    with pytest.raises(ArchamiError) as raised:
        build_variant(loaded, select(loaded.variants, VARIANT)[0], tmp_path / "out", CACHE_DIR)
    message = str(raised.value)
    print(f"[arch-shaped] unpinned build: {message}")
    assert KEYRING_PIN_ENV in message and "archlinux-keyring" in message
    assert "expired" in message or "unknown" in message


def _sh(guest: Guest, command: str, timeout: float = 300) -> str:
    result = guest.run(command, timeout=timeout)
    print(f"$ {command}\n{result.stdout}{result.stderr}", flush=True)
    assert result.returncode == 0, f"{command}: exit {result.returncode}: {result.stderr or result.stdout}"
    return result.stdout


def _keyring_facts(guest: Guest) -> tuple[str, dict[str, set[str]]]:
    """The pacman master key's fingerprint and, per public key fingerprint, the key ids of its local sigs."""
    gpg = "gpg --homedir /etc/pacman.d/gnupg --batch --with-colons"
    secret = _sh(guest, f"{gpg} --list-secret-keys")
    master = next(line.split(":")[9] for line in secret.splitlines() if line.startswith("fpr:"))
    lsigs: dict[str, set[str]] = {}
    current = ""
    expecting_fpr = False
    for line in _sh(guest, f"{gpg} --list-sigs").splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            expecting_fpr = True
        elif fields[0] == "fpr" and expecting_fpr:
            current, expecting_fpr = fields[9], False
            lsigs[current] = set()
        elif fields[0] == "sig" and fields[10].endswith("l"):  # class 1Xl: a local (non-exportable) signature
            lsigs[current].add(fields[4])
    return master, lsigs


@dataclass(frozen=True)
class FirstInstance:
    overlay: Path
    key: ssh.SshKey
    instance: ImdsConfig
    machine_id: str
    host_key: str | None
    master_key: str


@pytest.fixture(scope="module")
def bios_guest_checked(arch: ArchE2E, tmp_path_factory: pytest.TempPathFactory) -> FirstInstance:
    """BIOS boot with every in-guest check; the disk is kept for the derived-AMI boot."""
    work = tmp_path_factory.mktemp("bios")
    overlay = work / "disk.qcow2"
    make_overlay(arch.build.image, overlay)
    key = ssh.generate_keypair(work, "id_ed25519")
    instance = random_instance(region=REGION, public_keys={"first": key.public_line})
    with running_guest(overlay, "bios", instance, key, work, timeout=BOOT_TIMEOUT, forwards=arch.forwards) as guest:
        print(f"[arch-shaped] BIOS boot to SSH: {guest.boot_seconds:.1f} s ({guest.accel})", flush=True)
        started = time.monotonic()
        checks, facts = run_checks(guest, instance, disk_virtual_size(overlay))
        _timed("boot health checks", started)
        failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
        assert not failed, failed
        _sh(guest, "systemctl --failed --no-legend --plain | (! grep .)")
        qkk = guest.run("pacman -Qkk", timeout=600)
        lines = qkk.stdout.splitlines() + qkk.stderr.splitlines()
        altered = [line for line in lines if not line.endswith(" 0 altered files")]
        print(f"$ pacman -Qkk: exit {qkk.returncode}; lines other than '0 altered files':\n" + "\n".join(altered))
        # Edited configuration (backup files) is what /etc is for. The one file-type change is resolv.conf:
        # Arch's filesystem package ships a file there, and the image links resolved's stub as arch-boxes
        # does, which pacman -Qkk reports on every such Arch system (and so exits 1).
        expected = (RESOLV_TYPE_CHANGE, "backup file: ", "warning: database file for ")
        unexpected = [line for line in altered if not line.startswith(expected)]
        assert RESOLV_TYPE_CHANGE not in altered or unexpected[:1] == [ln for ln in unexpected if ln.startswith(
            "filesystem: ") and ln.endswith(" 1 altered file")], "the resolv.conf link is filesystem's only change"
        assert [line for line in unexpected if not line.startswith("filesystem: ")] == []
        _sh(guest, "pacman-key --list-sigs")
        master, lsigs = _keyring_facts(guest)
        for name, fingerprint in (("archlinux", arch.shaped.fingerprint), ("ec2", arch.ec2_fingerprint)):
            assert fingerprint in lsigs, f"{name} key {fingerprint} not in the instance keyring"
            assert master[-16:] in lsigs[fingerprint], f"{name} key not lsigned by the master key {master}"
        assert _sh(guest, "cat /etc/pacman.d/mirrorlist") == arch.region_list
        _sh(guest, "pacman -Sy --noconfirm", timeout=600)
        _sh(guest, "pacman -S --noconfirm ec2/ec2-pacman-mirrors", timeout=600)  # signed, over the relay
        _sh(guest, "pacman -Sw --noconfirm --cachedir /tmp/pkg bash && ls /tmp/pkg/bash-*.pkg.tar.zst", timeout=600)
        assert _sh(guest, "readlink -f /etc/resolv.conf").strip() == "/run/systemd/resolve/stub-resolv.conf"
        assert "nameserver 127.0.0.53" in _sh(guest, "cat /etc/resolv.conf")
        hostname = _sh(guest, "cat /proc/sys/kernel/hostname").strip()
        _sh(guest, f"resolvectl query {hostname}")
        _sh(guest, f"getent ahosts {hostname}")
        after = _sh(guest, "systemctl show -p After --value sshd.service").split()
        assert "network.target" in after
        machine_id = facts["machine_id"].strip()
        host_key = guest.host_key()
    return FirstInstance(overlay, key, instance, machine_id, host_key, master)


def test_bios_boot_passes_the_in_guest_checks(bios_guest_checked: FirstInstance) -> None:
    assert bios_guest_checked.machine_id and bios_guest_checked.host_key


def test_a_second_instance_of_the_disk_gets_a_new_identity(
    arch: ArchE2E, bios_guest_checked: FirstInstance, tmp_path: Path
) -> None:
    first = bios_guest_checked
    key = ssh.generate_keypair(tmp_path, "id_second")
    second = random_instance(region=REGION, public_keys={"second": key.public_line})
    with running_guest(
        first.overlay, "bios", second, key, tmp_path, timeout=BOOT_TIMEOUT, forwards=arch.forwards,
        clean_shutdown=False,
    ) as guest:
        print(f"[arch-shaped] second instance boot to SSH: {guest.boot_seconds:.1f} s", flush=True)
        assert not guest.can_login(first.key), "the first instance's key still logs in"
        assert _sh(guest, "cat /etc/machine-id").strip() not in ("", first.machine_id)
        assert guest.host_key() not in (None, first.host_key)
        _sh(guest, "systemctl is-system-running --wait || true", timeout=900)
        master, lsigs = _keyring_facts(guest)
        assert master != first.master_key, "the pacman master key was not regenerated"
        assert master[-16:] in lsigs[arch.ec2_fingerprint]


def test_uefi_boot_passes_the_boot_health_checks(arch: ArchE2E, tmp_path: Path) -> None:
    report = boot_test(arch.build.image, "uefi", report_dir=tmp_path, timeout=BOOT_TIMEOUT)
    print(f"[arch-shaped] UEFI boot to SSH: {report.boot_to_ssh_seconds} s ({report.accel})", flush=True)
    for check in report.checks:
        print(f"  uefi {check.name}: {'ok' if check.ok else 'FAIL'} ({check.detail})")
    assert report.ok, f"serial log: {report.serial_log}"
