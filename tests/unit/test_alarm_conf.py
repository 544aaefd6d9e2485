"""Arch Linux ARM (aarch64) in shape: no ALARM mirror is reachable here, so what archami generates for it --
the build's pacman.conf, the backend's package set and cache key, the instance's pacman.conf -- is checked as
files, the pacman.conf through the host's real pacman-conf."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from archami.config import expand, parse_definition
from archami.config.schema import Repository
from archami.distro.arch import ArchBackend
from archami.distro.arch_conf import (
    ALARM_MIRROR_ENV,
    DEFAULT_SIGLEVEL,
    distro_repositories_for,
    instance_pacman_conf,
    mirror_layout_error,
    mirrors_for,
    pacman_conf,
)
from archami.errors import ArchamiError

ALARM_MIRROR = "https://alarm.example/$arch/$repo"
EC2 = Repository(name="ec2", server="https://ec2.example/$repo/$arch", first=True)


def _alarm_definition(mirrors: str = f'["{ALARM_MIRROR}"]') -> str:
    return (
        'name = "alarm"\ndistro = "arch"\nrelease = "rolling"\narchitecture = "aarch64"\n'
        '[kernel]\nstable = "linux"\n'
        f'[architectures.aarch64]\nkernel = {{ stable = "linux-aarch64" }}\nmirrors = {mirrors}\n'
    )


def _pacman_conf_query(conf: Path, *args: str) -> list[str]:
    out = subprocess.run(["pacman-conf", "--config", str(conf), *args], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_build_conf_has_alarms_repositories_layout_and_siglevel(tmp_path: Path) -> None:
    text = pacman_conf(
        architecture="aarch64", mirrors=[ALARM_MIRROR], repositories=[EC2],
        distro_repositories=distro_repositories_for("aarch64"), db_path=tmp_path / "db",
    )
    conf = tmp_path / "pacman.conf"
    conf.write_text(text)
    # pacman itself reads the file: the repositories in order, each with the $arch/$repo server expanded.
    assert _pacman_conf_query(conf, "--repo-list") == ["ec2", "core", "extra", "alarm"]
    for repo in ("core", "extra", "alarm"):
        assert _pacman_conf_query(conf, "--repo", repo, "Server") == [f"https://alarm.example/aarch64/{repo}"]
    assert _pacman_conf_query(conf, "Architecture") == ["aarch64"]
    # ALARM signs its packages but not its databases: Required for packages, databases checked when signed.
    assert DEFAULT_SIGLEVEL == "Required DatabaseOptional"
    levels = _pacman_conf_query(conf, "SigLevel")
    assert "PackageRequired" in levels and "DatabaseOptional" in levels and "PackageOptional" not in levels
    assert distro_repositories_for("x86_64") == ("core", "extra")


def test_arch_linux_layout_for_an_aarch64_build_is_refused() -> None:
    arch_layout = "https://mirror.example/archlinux/$repo/os/$arch"
    assert mirror_layout_error(arch_layout, "x86_64") is None
    assert "$arch/$repo" in (mirror_layout_error(arch_layout, "aarch64") or "")
    with pytest.raises(ArchamiError, match="Arch Linux ARM mirrors serve"):
        pacman_conf(
            architecture="aarch64", mirrors=[arch_layout], distro_repositories=distro_repositories_for("aarch64")
        )
    with pytest.raises(ArchamiError, match=f"set {ALARM_MIRROR_ENV}"):
        pacman_conf(architecture="aarch64", distro_repositories=distro_repositories_for("aarch64"))


def test_aarch64_mirrors_come_from_their_own_variable() -> None:
    env = {"ARCHAMI_ARCH_MIRROR": "https://x86.example/$repo/os/$arch", ALARM_MIRROR_ENV: ALARM_MIRROR}
    assert mirrors_for([], env, "aarch64") == [ALARM_MIRROR]
    assert mirrors_for([], env, "x86_64") == ["https://x86.example/$repo/os/$arch"]


def test_backend_installs_alarms_kernel_grub_and_keyring_from_alarm_repositories() -> None:
    (spec,) = expand(parse_definition(_alarm_definition()))
    assert spec.kernel.package == "linux-aarch64" and spec.mirrors == (ALARM_MIRROR,)
    backend = ArchBackend()
    packages = backend.bootstrap_packages(spec)
    # No arm64-efi GRUB on an x86_64 host: the image's grub package brings it; ALARM's keyring is named.
    assert {"base", "linux-aarch64", "openssh", "grub", "archlinuxarm-keyring"} <= set(packages)
    assert backend.keyrings_for(spec) == ("archlinuxarm",)
    assert backend.repositories_for(spec) == ("core", "extra", "alarm")


def test_alarm_cache_key_needs_the_archlinuxarm_keyring_on_the_host() -> None:
    (spec,) = expand(parse_definition(_alarm_definition()))
    if Path("/usr/share/keyrings/archlinuxarm.gpg").is_file():
        assert ArchBackend().cache_inputs(spec)["distro_repositories"] == ["core", "extra", "alarm"]
    else:  # Debian packages no ALARM keyring: the build says so before downloading anything
        with pytest.raises(ArchamiError, match=r"archlinuxarm\.gpg not found: install the archlinuxarm keyring"):
            ArchBackend().cache_inputs(spec)


# The shape of ALARM's pacman package's /etc/pacman.conf: Arch's, plus [alarm].
ALARM_PACKAGE_CONF = """\
[options]
HoldPkg     = pacman glibc
Architecture = auto
CheckSpace
SigLevel    = Required DatabaseOptional
LocalFileSigLevel = Optional

[core]
Include = /etc/pacman.d/mirrorlist

[extra]
Include = /etc/pacman.d/mirrorlist

[alarm]
Include = /etc/pacman.d/mirrorlist
"""


def test_instance_conf_keeps_alarm_and_puts_ec2_first(tmp_path: Path) -> None:
    conf = tmp_path / "pacman.conf"
    conf.write_text(instance_pacman_conf(ALARM_PACKAGE_CONF, [EC2]))
    mirrorlist = tmp_path / "mirrorlist"
    mirrorlist.write_text(f"Server = {ALARM_MIRROR}\n")
    # As on the instance: its mirrorlist, and `Architecture = auto` resolving to the instance's aarch64.
    text = conf.read_text().replace("/etc/pacman.d/mirrorlist", str(mirrorlist))
    conf.write_text(text.replace("Architecture = auto", "Architecture = aarch64"))
    assert _pacman_conf_query(conf, "--repo-list") == ["ec2", "core", "extra", "alarm"]
    assert _pacman_conf_query(conf, "--repo", "alarm", "Server") == ["https://alarm.example/aarch64/alarm"]
