"""linux-ec2 for Arch: the pacman packages from `archami kernel build`, added to a signed `ec2`
repository served on 127.0.0.1, installed by REAL pacman (SigLevel = Required) into a fresh root, and
checked with `pacman -Qkk` (every file against the package's .MTREE). The kernel build is cached: cold
once per machine (it is the slow part), a copy afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kernel_support import build_linux_ec2
from repo_support import http_server, pacman_install, pacman_keyring, require_tools

from archami.kernel.build import KernelBuild
from archami.kernel.fragment import parse_config
from archami.pacman.archive import read_package
from archami.pacman.gpg import Gpg
from archami.pacman.repo import Repository, Signer, add_packages

# A cold kernel build (a new machine) is ~10-15 min on 2 idle cores, far longer on a busy one.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> tuple[KernelBuild, Path]:
    out = tmp_path_factory.mktemp("linux-ec2")
    return build_linux_ec2(out), out


def test_pacman_installs_linux_ec2_from_the_ec2_repository(
    kernel: tuple[KernelBuild, Path], tmp_path: Path
) -> None:
    require_tools("pacman", "pacman-key", "gpg")
    record, out = kernel
    packages = [out / name for name in record.files_of(".pkg.tar.zst")]
    assert sorted(read_package(p).info.pkgname for p in packages) == ["linux-ec2", "linux-ec2-headers"]
    served = tmp_path / "served"
    with Gpg(tmp_path / "gnupg") as gpg:
        key = gpg.generate_key("archami ec2 test <ec2-test@archami.invalid>")
        add_packages(Repository.open(served / "ec2", "ec2"), packages, signer=Signer(gpg, key))
        key_file = tmp_path / "ec2.asc"
        key_file.write_text(gpg.export_armored([key]))
    gpgdir = pacman_keyring(tmp_path / "pacman-gnupg", key_file, [key])
    root = tmp_path / "root"
    with http_server(served) as url:
        result = pacman_install(root, f"{url}/ec2", gpgdir, ["linux-ec2", "linux-ec2-headers"])
    assert result.returncode == 0, result.stdout + result.stderr

    modules = root / "usr/lib/modules" / record.release
    # What mkinitcpio's install hook looks for: the image beside the modules, and the preset's name.
    assert (modules / "pkgbase").read_text() == "linux-ec2\n"
    assert (modules / "vmlinuz").read_bytes()[0x202:0x206] == b"HdrS"  # an x86 bzImage
    assert len(list(modules.rglob("*.ko"))) > 0 and (modules / "modules.order").is_file()
    assert not (modules / "modules.dep").exists()  # depmod makes it on the instance
    assert ((root / "usr/src/linux-ec2").resolve() / "Makefile").is_file()
    final = parse_config((modules / "build/.config").read_text())
    assert final["CONFIG_PREEMPT_VOLUNTARY"] == "y" and final["CONFIG_HZ"] == "100"

    query = ["pacman", "--root", str(root), "--dbpath", str(root / "var/lib/pacman")]
    check = subprocess.run([*query, "-Qkk"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for name in ("linux-ec2", "linux-ec2-headers"):
        assert f"{name}: " in check.stdout
    assert check.stdout.count(" 0 altered files") == 2, check.stdout
    info = subprocess.run([*query, "-Qi", "linux-ec2"], capture_output=True, text=True, check=True).stdout
    provides = next(line for line in info.splitlines() if line.startswith("Provides"))
    assert ("WIREGUARD-MODULE" in provides) == (final.get("CONFIG_WIREGUARD", "n") != "n")
    desc = next((root / "var/lib/pacman/local").glob("linux-ec2-[0-9]*/desc")).read_text()
    assert "%BASE%\nlinux-ec2\n" in desc
