"""End to end: linux-ec2 built from Debian's linux-source-6.1, published as a signed apt repository on
127.0.0.1, installed into a Debian bookworm test definition by name (`kernel.stable = "linux-ec2"`, the
metapackage) from that definition's `[[repositories]]`, the image built, and booted under BIOS and UEFI
against the local IMDS with every boot check green; inside the guest the running kernel is linux-ec2
with voluntary preemption and a 100 Hz tick.

The kernel build is cached per machine (cold once: see bench/kernel_ec2.py for its time); the image build
and two TCG boots take ~5-10 minutes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from build_support import CACHE_DIR
from kernel_support import build_linux_ec2, debian_archive_mirrors, world_readable_dir
from repo_support import http_server

from archami.artifacts import BuildResult
from archami.config import load_definition
from archami.distro.debian import MIRROR_ENV
from archami.image.pipeline import build_variant
from archami.kernel.aptrepo import KEY_FILE, write_apt_repository
from archami.kernel.build import KernelBuild
from archami.kernel.fragment import parse_config
from archami.pacman.gpg import Gpg
from archami.vm import ssh
from archami.vm.boot import random_instance, run_checks
from archami.vm.guest import running_guest
from archami.vm.qemu import disk_virtual_size, make_overlay

# A cold kernel build (a new machine) is ~10-15 min on 2 idle cores, far longer on a busy one.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]
BOOT_TIMEOUT = 600  # TCG on a busy 2-core machine (see test_boot_debian.py)

DEFINITION = """\
name = "debian-linux-ec2"
description = "Debian bookworm with the linux-ec2 kernel (test definition; no quotes: grub titles are not escaped)"
distro = "debian"
release = "bookworm"
architecture = "x86_64"
hostname = "debian"

[kernel]
stable = "linux-ec2"
cmdline = ["console=tty0", "console=ttyS0,115200", "nvme_core.io_timeout=4294967295", "net.ifnames=0", "quiet"]
initramfs_modules = ["nvme", "ena", "xen-blkfront", "xen-netfront", "virtio_blk", "virtio_net", "virtio_pci"]

[packages]
add = ["systemd-sysv", "udev", "openssh-server", "python3-minimal", "e2fsprogs", "fdisk", "ca-certificates",
       "less", "iproute2", "sudo"]

[services]
enable = ["systemd-networkd.service", "systemd-resolved.service", "ssh.service"]
deferred = ["systemd-resolved.service"]

[ssh]
host_key_types = ["ed25519"]

[disk]
size = "2GiB"

[[repositories]]
name = "linux-ec2"
server = "{server}"
key = "{key}"
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> tuple[KernelBuild, Path]:
    out = tmp_path_factory.mktemp("linux-ec2")
    return build_linux_ec2(out), out


@pytest.fixture(scope="module")
def image(kernel: tuple[KernelBuild, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildResult]:
    record, out = kernel
    work = tmp_path_factory.mktemp("debian-linux-ec2")
    with world_readable_dir("archami-kernel-apt-") as served:
        repo_dir = served / "debian"
        repo_dir.mkdir()
        for name in record.files_of(".deb"):
            shutil.copyfile(out / name, repo_dir / name)
        with Gpg(work / "gnupg") as gpg:
            key = gpg.generate_key("archami kernel test <kernel-test@archami.invalid>")
            repo = write_apt_repository(repo_dir, gpg, key, epoch=int(record.inputs["epoch"]))
        assert {"linux-ec2", f"linux-image-{record.release}"} <= set(repo.packages)
        with http_server(served) as url, pytest.MonkeyPatch.context() as env:
            # A definition with repositories names the archive too: this machine's own apt sources.
            env.setenv(MIRROR_ENV, " ".join(debian_archive_mirrors()))
            definition = work / "debian-linux-ec2.toml"
            definition.write_text(DEFINITION.format(server=f"{url}/debian/", key=repo.directory / KEY_FILE))
            loaded = load_definition(definition)
            assert len(loaded.variants) == 1  # bookworm, ebs, hvm, x86_64, stable channel
            yield build_variant(loaded, loaded.variants[0], work / "out", CACHE_DIR)


def test_image_carries_linux_ec2(kernel: tuple[KernelBuild, Path], image: BuildResult) -> None:
    record, _ = kernel
    assert image.manifest.kernel_version == record.release
    names = {p.name: p.version for p in image.manifest.packages}
    assert names.get(f"linux-image-{record.release}") == f"{record.version}-{record.pkgrel}"
    assert "linux-ec2" in names


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_boots_with_every_check_green_and_runs_the_ec2_configuration(
    kernel: tuple[KernelBuild, Path], image: BuildResult, firmware: str, tmp_path: Path
) -> None:
    record, _ = kernel
    overlay = tmp_path / "disk.qcow2"
    make_overlay(image.image, overlay, None)
    key = ssh.generate_keypair(tmp_path, "id_ed25519")
    instance = random_instance()
    instance = replace(instance, public_keys={"test": key.public_line})
    fw = "bios" if firmware == "bios" else "uefi"
    with running_guest(overlay, fw, instance, key, tmp_path, timeout=BOOT_TIMEOUT, clean_shutdown=False) as guest:
        print(f"{firmware} boot to SSH with linux-ec2: {guest.boot_seconds:.1f}s")
        checks, facts = run_checks(guest, instance, disk_virtual_size(overlay))
        failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
        assert not failed, "\n".join(failed) + f"\nserial log: {tmp_path / f'serial-{fw}.log'}"
        assert facts["kernel"].strip() == record.release
        # Instances keep the kernel's repository (deb822, its key in /etc/apt/keyrings), not the build's line.
        uris = guest.output("apt-get update --print-uris")
        assert "'http://127.0.0.1:" in uris and "/debian/" in uris, uris
        assert "signed-by=" not in guest.output("cat /etc/apt/sources.list 2>/dev/null; true")
        for command in ("cat /boot/config-$(uname -r)", "zcat /proc/config.gz"):
            running = parse_config(guest.output(command))
            assert running["CONFIG_PREEMPT_VOLUNTARY"] == "y", command
            assert running["CONFIG_HZ"] == "100", command
            assert running.get("CONFIG_PREEMPT_DYNAMIC", "n") == "n", command
