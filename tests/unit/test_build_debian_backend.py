"""Debian backend pieces that need no root: package set, mirrors, manifest data from dpkg, caches."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from archami.config import parse_definition
from archami.config.matrix import expand
from archami.distro import debian
from archami.distro.base import BuildContext

BASE = """
name = "t"
distro = "debian"
release = "bookworm"
kernel = { stable = "linux-image-cloud-amd64", initramfs_modules = ["nvme"] }
packages = { add = ["sudo"], remove = ["nano"] }
"""


def _ctx(tmp_path: Path, extra: str = "") -> BuildContext:
    definition = parse_definition(BASE + extra)
    return BuildContext(expand(definition)[0], tmp_path / "root", tmp_path, tmp_path / "cache",
                        logging.getLogger("t"))


def test_bootstrap_packages_add_what_the_ec2_build_needs(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    packages = debian.bootstrap_packages(ctx.spec)
    assert packages == sorted(packages)
    for name in ("sudo", "linux-image-cloud-amd64", "initramfs-tools", "openssh-server", "systemd-resolved",
                 "python3", "systemd-sysv"):
        assert name in packages
    assert "nano" not in packages and "isc-dhcp-client" not in packages


def test_dhclient_and_cloud_init_change_the_package_set(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, '[network]\nstack = "dhclient"\n[firstboot]\nagent = "cloud-init"\n')
    packages = debian.bootstrap_packages(ctx.spec)
    assert "isc-dhcp-client" in packages and "cloud-init" in packages
    assert "systemd-resolved" not in packages


def test_mirrors_come_from_the_definition_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    assert debian.mirrors(parse_definition(BASE)) == []  # mmdebstrap's own default
    monkeypatch.setenv(debian.MIRROR_ENV, "http://127.0.0.1:3142/debian")
    assert debian.mirrors(parse_definition(BASE)) == ["http://127.0.0.1:3142/debian"]
    own = parse_definition('mirrors = ["http://127.0.0.2/debian", "http://$region.mirror/debian"]\n' + BASE)
    assert debian.mirrors(own) == ["http://127.0.0.2/debian"]  # a $region mirror is for instances


def _status(root: Path, entries: list[tuple[str, str, str]]) -> None:
    admin = root / "var/lib/dpkg"
    admin.mkdir(parents=True, exist_ok=True)
    (admin / "info").mkdir(exist_ok=True)
    (admin / "available").write_text("")
    blocks = []
    for name, version, status in entries:
        blocks.append(f"Package: {name}\nStatus: {status}\nPriority: optional\nArchitecture: amd64\n"
                      f"Version: {version}\nMaintainer: x <x@x>\nDescription: x\n")
    (admin / "status").write_text("\n".join(blocks))


def test_installed_packages_come_from_dpkg_query(tmp_path: Path) -> None:
    _status(tmp_path, [("zlib1g", "1:1.2.13.dfsg-1", "install ok installed"),
                       ("bash", "5.2.15-2+b2", "install ok installed"),
                       ("gone", "1.0", "deinstall ok config-files")])
    packages = debian.DebianBackend().installed_packages(tmp_path)
    assert [(p.name, p.version, p.architecture) for p in packages] == [
        ("bash", "5.2.15-2+b2", "amd64"), ("zlib1g", "1:1.2.13.dfsg-1", "amd64")]


def test_kernel_version_needs_a_kernel_and_its_modules(tmp_path: Path) -> None:
    backend = debian.DebianBackend()
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.1.0-9-cloud-amd64").write_bytes(b"k")
    with pytest.raises(Exception, match="no kernel"):
        backend.kernel_version(tmp_path, _ctx(tmp_path).spec)
    (tmp_path / "usr/lib/modules/6.1.0-9-cloud-amd64").mkdir(parents=True)
    assert backend.kernel_version(tmp_path, _ctx(tmp_path).spec) == "6.1.0-9-cloud-amd64"


def test_superseded_debs_are_pruned_others_kept(tmp_path: Path) -> None:
    for name in ("bash_5.2.15-2+b1_amd64.deb", "bash_5.2.15-2+b2_amd64.deb", "zlib1g_1%3a1.2.13_amd64.deb",
                 "other_1.0_all.deb"):
        (tmp_path / name).write_bytes(b"")
    from archami.artifacts import PackageInfo

    debian._prune_superseded_debs(tmp_path, [PackageInfo(name="bash", version="5.2.15-2+b2"),
                                             PackageInfo(name="zlib1g", version="1:1.2.13")])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bash_5.2.15-2+b2_amd64.deb", "other_1.0_all.deb", "zlib1g_1%3a1.2.13_amd64.deb"]


def test_initramfs_key_follows_packages_and_initramfs_configuration(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    _status(ctx.root, [("linux-image-6.1.0-9-cloud-amd64", "6.1.1-1", "install ok installed")])
    (ctx.root / "etc/initramfs-tools").mkdir(parents=True)
    (ctx.root / "etc/initramfs-tools/modules").write_text("nvme\n")
    first = debian.initramfs_key(ctx, "6.1.0-9-cloud-amd64")
    (ctx.root / "etc/motd").write_text("config-only change")
    assert debian.initramfs_key(ctx, "6.1.0-9-cloud-amd64") == first
    (ctx.root / "etc/initramfs-tools/modules").write_text("nvme\nena\n")
    second = debian.initramfs_key(ctx, "6.1.0-9-cloud-amd64")
    assert second != first
    _status(ctx.root, [("linux-image-6.1.0-9-cloud-amd64", "6.1.1-2", "install ok installed")])
    assert debian.initramfs_key(ctx, "6.1.0-9-cloud-amd64") != second


def test_path_excludes_keep_copyright_files() -> None:
    assert debian.excluded("/usr/share/doc/bash/README")
    assert not debian.excluded("/usr/share/doc/bash/copyright")
    assert debian.excluded("/usr/share/man/man1/ls.1.gz")
    assert debian.excluded("/usr/share/locale/de/LC_MESSAGES/x.mo")
    assert not debian.excluded("/usr/share/locale/locale.alias")
    assert not debian.excluded("/usr/bin/ls")


def test_remove_excluded_cleans_what_the_first_unpack_left(tmp_path: Path) -> None:
    for rel in ("usr/share/doc/bash/README", "usr/share/doc/bash/copyright", "usr/share/man/man1/ls.1.gz",
                "usr/share/locale/locale.alias", "usr/share/locale/de/LC_MESSAGES/x.mo", "usr/bin/ls"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "usr/share/doc/libalias").symlink_to("bash")
    assert debian.remove_excluded(tmp_path) == 4
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir())
    assert left == ["usr/bin/ls", "usr/share/doc/bash/copyright", "usr/share/locale/locale.alias"]


def test_the_excludes_hook_writes_the_same_file_dpkg_reads(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["sh", "-c", debian._write_excludes_hook(), "hook", str(tmp_path)], check=True)
    written = (tmp_path / debian.EXCLUDES_FILE).read_text().splitlines()
    assert [line for line in written if not line.startswith("#")] == debian.DPKG_EXCLUDES
