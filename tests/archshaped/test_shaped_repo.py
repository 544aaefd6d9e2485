"""The shaped repository itself: real pacman installs an Arch-layout root from it over HTTP on 127.0.0.1
with SigLevel Required, the signing key trusted only through the shaped archlinux-keyring's files, and
the result is what Arch's packages would leave (hooks ran, `pacman -Qkk` clean, Arch's names and paths).

First run downloads ~110 MiB of Debian 13 packages into $ARCHAMI_SHAPED_CACHE (default
/var/cache/archami/archshaped) and converts them (~2 minutes); later runs reuse the cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from archami.distro.arch_conf import pacman_conf
from archami.distro.arch_pacman import PacmanPaths, install, run_in_root, run_pacman
from archami.errors import ArchamiError

from . import repo, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOG = logging.getLogger("test-archshaped")
PACKAGES = ["base", "linux", "openssh", "python", "sudo", "e2fsprogs", "grub", "mkinitcpio", "rng-tools",
            "systemd-sysvcompat", "pinentry"]  # fmt: skip
ALIASES = {"bin": "usr/bin", "sbin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib", "usr/sbin": "bin",
           "usr/lib64": "lib"}  # fmt: skip


@dataclass(frozen=True)
class Mirror:
    shaped: repo.ShapedRepository
    url: str  # http://127.0.0.1:PORT


def _keyring(gpg_dir: Path, keyring_files: Path) -> None:
    """A pacman keyring trusting what the shaped archlinux-keyring ships: `pacman-key --populate` reads
    /usr/share/keyrings on Debian, so its files are bind-mounted there in a private mount namespace."""
    subprocess.run(["pacman-key", "--gpgdir", str(gpg_dir), "--init"], check=True, capture_output=True)
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c",
         'mount --bind "$1" /usr/share/keyrings && exec pacman-key --gpgdir "$2" --populate archlinux',
         "populate", str(keyring_files), str(gpg_dir)],
        check=True, capture_output=True,
    )  # fmt: skip


def _paths(work: Path, server: str) -> PacmanPaths:
    paths = PacmanPaths(
        root=work / "root", config=work / "pacman.conf", gpg_dir=work / "gnupg", cache_dir=work / "cache",
        log_file=work / "pacman.log",
    )  # fmt: skip
    paths.cache_dir.mkdir(parents=True)
    conf = pacman_conf(architecture="x86_64", mirrors=[server], cache_dir=paths.cache_dir, db_path=paths.db_path,
                       gpg_dir=paths.gpg_dir, log_file=paths.log_file)  # fmt: skip
    paths.config.write_text(conf.replace("SigLevel = Required DatabaseOptional", "SigLevel = Required"))
    return paths


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    if os.geteuid() != 0:
        pytest.fail("installing a root with pacman needs root")
    out = tmp_path_factory.mktemp("shaped")
    shaped = repo.make(out)
    print(f"shaped repository: {shaped.timings}")
    with serve.serving(out) as url:
        yield Mirror(shaped, url)


@pytest.fixture(scope="module")
def installed(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PacmanPaths]:
    work = tmp_path_factory.mktemp("root")
    paths = _paths(work, mirror.shaped.mirror_url(mirror.url))
    _keyring(paths.gpg_dir, mirror.shaped.keyring)
    install(paths, PACKAGES, LOG)  # raises on any failed scriptlet or hook, though pacman exits 0
    yield paths
    subprocess.run(["gpgconf", "--homedir", str(paths.gpg_dir), "--kill", "all"], check=False)


def test_pacman_qkk_is_clean(installed: PacmanPaths) -> None:
    proc = subprocess.run(["pacman", "--root", str(installed.root), "--dbpath", str(installed.db_path), "-Qkk"],
                          capture_output=True, text=True)  # fmt: skip
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("warning:")]
    assert not warnings, "\n".join(warnings)
    # Only backup files may differ from their package (sysusers adds accounts to /etc/passwd, etc.).
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_layout_is_arch_merged_usr(installed: PacmanPaths) -> None:
    root = installed.root
    for alias, target in ALIASES.items():
        assert (root / alias).is_symlink() and os.readlink(root / alias) == target, alias
    owned = subprocess.run(["pacman", "--root", str(root), "--dbpath", str(installed.db_path), "-Qlq"],
                           capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    prefix = str(root) + "/"
    below_alias = [p for p in owned if any(p.removeprefix(prefix).startswith(a + "/") for a in ALIASES)]
    assert not below_alias, below_alias[:10]
    units = root / "usr/lib/systemd/system"
    assert (units / "sshd.service").is_file() and not (units / "ssh.service").exists()
    assert (root / "usr/share/pacman/keyrings/archlinux.gpg").is_file()
    assert "/usr/share/pacman/keyrings" in (root / "usr/bin/pacman-key").read_text()
    assert "ID=arch" in (root / "etc/os-release").read_text()
    assert not (root / "etc/resolv.conf").is_symlink()  # as on Arch: nothing links it to resolved's stub


def test_hooks_made_the_root_consistent(installed: PacmanPaths) -> None:
    root = installed.root
    log = installed.log_file.read_text()
    for hook in ("20-systemd-sysusers", "30-systemd-tmpfiles", "40-update-ca-certificates", "60-depmod",
                 "90-mkinitcpio-install"):  # fmt: skip
        assert f"running '{hook}.hook'" in log, hook
    accounts = (root / "etc/passwd").read_text()
    for user in ("sshd", "systemd-network", "systemd-resolve", "alpm", "messagebus"):
        assert f"\n{user}:" in accounts, user  # 20-systemd-sysusers.hook
    assert (root / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 100_000  # update-ca-certificates hook
    (modules,) = (root / "usr/lib/modules").iterdir()
    assert (modules / "modules.dep").stat().st_size > 0  # 60-depmod.hook
    assert (modules / "pkgbase").read_text().strip() == "linux"
    # 90-mkinitcpio-install: vmlinuz copied to /boot/vmlinuz-<pkgbase>, the preset made and run
    assert (root / "boot/vmlinuz-linux").read_bytes() == (modules / "vmlinuz").read_bytes()
    assert "PRESETS=('default')" in (root / "etc/mkinitcpio.d/linux.preset").read_text()
    assert (root / "boot/initramfs-linux.img").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd, as configured
    run_in_root(root, ["python3", "-c", "import ssl, json, sqlite3, ctypes"], LOG, what="python imports")
    # /run/sshd is the unit's RuntimeDirectory; the host keys are removed again.
    sshd_check = "mkdir -p /run/sshd && ssh-keygen -A >/dev/null && sshd -t && rm -f /etc/ssh/ssh_host_*"
    run_in_root(root, ["sh", "-c", sshd_check], LOG, what="sshd -t")


def test_pacman_key_in_the_root_populates_archlinux_from_the_keyring_package(installed: PacmanPaths) -> None:
    """What first boot does on an instance: the root's own pacman-key (libmakepkg, Arch's keyring path)."""
    try:
        run_in_root(installed.root, ["pacman-key", "--init"], LOG, what="pacman-key --init")
        run_in_root(installed.root, ["pacman-key", "--populate", "archlinux"], LOG, what="pacman-key --populate")
        keys = run_in_root(installed.root, ["pacman-key", "--list-sigs"], LOG, what="pacman-key --list-sigs")
        assert "archami shaped test repository" in keys
    finally:
        # the root's own gpg-agent, stopped by the root's own gpgconf
        run_in_root(installed.root, ["gpgconf", "--homedir", "/etc/pacman.d/gnupg", "--kill", "all"], LOG,
                    what="gpgconf --kill")  # fmt: skip
        shutil.rmtree(installed.root / "etc/pacman.d/gnupg", ignore_errors=True)


def test_mkinitcpio_stand_in_checks_modules_like_v41(installed: PacmanPaths) -> None:
    dropins = installed.root / "etc/mkinitcpio.conf.d"
    dropin = dropins / "test.conf"
    try:
        dropin.write_text("MODULES=(virtio_blk no_such_module)\n")
        with pytest.raises(ArchamiError, match="module not found: 'no_such_module'"):
            run_in_root(installed.root, ["mkinitcpio", "-P"], LOG, what="mkinitcpio -P")
        dropin.write_text("MODULES=(virtio_blk no_such_module?)\nCOMPRESSION=gzip\n")  # `?`: optional
        output = run_in_root(installed.root, ["mkinitcpio", "-P"], LOG, what="mkinitcpio -P")
        assert "modules: virtio_blk" in output
        assert (installed.root / "boot/initramfs-linux.img").read_bytes()[:2] == b"\x1f\x8b"
    finally:
        dropin.unlink(missing_ok=True)


def test_keyring_and_kernel_pull_arch_dependencies(mirror: Mirror, tmp_path: Path) -> None:
    """Arch's metadata, seen by pacman: archlinux-keyring pulls pacman (so `-Sp archlinux-keyring` on an
    empty root lists a whole closure), linux pulls an `initramfs` provider; served in the flat layout too."""
    paths = _paths(tmp_path, f"{mirror.url}/{repo.REPO_TEMPLATE}")
    _keyring(paths.gpg_dir, mirror.shaped.keyring)
    try:
        closure = run_pacman(paths, ["-Sy", "--print-format", "%n", "archlinux-keyring"], LOG, what="pacman -Sp")
        names = set(closure.split())
        assert {"archlinux-keyring", "pacman", "glibc", "gpgme"} <= names
        kernel = set(run_pacman(paths, ["-Sp", "--print-format", "%n", "linux"], LOG, what="pacman -Sp").split())
        assert {"linux", "mkinitcpio", "kmod", "dracut"} <= kernel
    finally:
        subprocess.run(["gpgconf", "--homedir", str(paths.gpg_dir), "--kill", "all"], check=False)
        shutil.rmtree(paths.root, ignore_errors=True)
