"""Reproducible disk assembly with the real tools (mkfs.ext4, mkfs.fat, mtools, debugfs) on small images:
two assemblies of equal trees made at different times in different directories give equal bytes, and a
deliberate difference is reported with the file it is in."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from archami.config.reproducible import Reproducible
from archami.distro.package_dates import newest_dpkg_file_date, newest_pacman_build_date
from archami.image import disk
from archami.image.compare import compare_images
from archami.image.layout import MIB, plan_layout
from archami.image.reproducible import build_epoch, clamp_times, used_inodes

LOG = logging.getLogger("test")
EPOCH = 1_700_000_000
PACKAGE_TIME = EPOCH - 86_400  # a file "from a package": older than the epoch


def _tree(root: Path, hostname: str = "tiny\n") -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text(hostname)
    (root / "boot/grub").mkdir(parents=True)
    (root / "boot/grub/grub.cfg").write_text("# test\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"\x7fELF" + bytes(50_000))
    os.utime(root / "usr/bin/tool", (PACKAGE_TIME, PACKAGE_TIME))
    (root / "var/tmp").mkdir(parents=True)
    os.symlink("usr/bin", root / "bin")
    return root


def _assemble(base: Path, epoch: int | None, hostname: str = "tiny\n") -> Path:
    root = _tree(base / "root", hostname)
    layout = plan_layout(300 * MIB, virtualization="hvm", esp_size=33 * MIB, seed="unit-repro")
    image = base / "image.raw"
    disk.assemble(image, layout, root, base, LOG, epoch)
    return image


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _stat(image: Path, path: str) -> str:
    offset = plan_layout(300 * MIB, virtualization="hvm", esp_size=33 * MIB, seed="unit-repro").root.start
    return subprocess.run(["debugfs", "-R", f"stat {path}", f"{image}?offset={offset}"],
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def two_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first = _assemble(tmp_path_factory.mktemp("first-build"), EPOCH)
    time.sleep(1.1)  # another wall-clock second: mkfs's clock, ctimes and atimes all move
    second = _assemble(tmp_path_factory.mktemp("second-build-elsewhere"), EPOCH)
    return first, second


def test_two_assemblies_are_the_same_bytes(two_images: tuple[Path, Path]) -> None:
    first, second = two_images
    assert _sha256(first) == _sha256(second)
    assert compare_images(first, second) is None


def test_times_are_tied_to_the_epoch(two_images: tuple[Path, Path]) -> None:
    first, _ = two_images
    hostname = _stat(first, "/etc/hostname")  # written "now": clamped
    for field in ("ctime", "atime", "mtime", "crtime"):
        assert f"{field}: {EPOCH:#x}:00000000" in hostname
    tool = _stat(first, "/usr/bin/tool")  # older than the epoch: its package's time stays
    assert f"mtime: {PACKAGE_TIME:#x}" in tool and f"ctime: {EPOCH:#x}" in tool
    assert f"mtime: {EPOCH:#x}" in _stat(first, "/var/tmp")


def test_without_an_epoch_two_assemblies_differ(tmp_path: Path) -> None:
    """The check above is not vacuous: the same trees without the epoch give different bytes."""
    first = _assemble(tmp_path / "a", None)
    time.sleep(1.1)
    second = _assemble(tmp_path / "b", None)
    assert _sha256(first) != _sha256(second)
    difference = compare_images(first, second)
    assert difference is not None


def test_a_changed_file_is_reported_with_its_path(tmp_path: Path, two_images: tuple[Path, Path]) -> None:
    first, _ = two_images
    changed = _assemble(tmp_path, EPOCH, hostname="other\n")
    difference = compare_images(first, changed)
    assert difference is not None and difference.first_file is not None
    assert difference.region == "partition 3 (ext4)"
    assert difference.first_file.path == "/etc/hostname"
    assert "Size: 5 -> " in difference.first_file.detail and "Size: 6" in difference.first_file.detail
    assert difference.first_file.detail.startswith("content; ")
    assert "/etc/hostname differs" in difference.summary()
    if shutil.which("diffoscope"):  # optional: its report shows the two versions
        assert difference.diffoscope is not None and "-tiny" in difference.diffoscope
        assert "+other" in difference.diffoscope
    else:
        assert difference.diffoscope is None


def test_a_file_added_to_the_efi_partition_is_reported(tmp_path: Path, two_images: tuple[Path, Path]) -> None:
    first, _ = two_images
    copy = tmp_path / "copy.raw"
    subprocess.run(["cp", "--sparse=always", str(first), str(copy)], check=True)
    esp = plan_layout(300 * MIB, virtualization="hvm", esp_size=33 * MIB, seed="unit-repro").part("esp")
    extra = tmp_path / "extra.txt"
    extra.write_text("not in the first image\n")
    subprocess.run(["mcopy", "-i", f"{copy}@@{esp.start}", str(extra), "::/EFI/BOOT/EXTRA.TXT"], check=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    difference = compare_images(first, copy)
    assert difference is not None and difference.first_file is not None
    assert difference.region == "partition 2 (FAT)"
    assert difference.first_file.path == "/EFI/BOOT/EXTRA.TXT"
    assert "only in the second" in difference.first_file.detail


def test_used_inodes_cover_every_file_of_the_tree(two_images: tuple[Path, Path]) -> None:
    first, _ = two_images
    offset = plan_layout(300 * MIB, virtualization="hvm", esp_size=33 * MIB, seed="unit-repro").root.start
    device = f"{first}?offset={offset}"
    listing = subprocess.run(["dumpe2fs", device], capture_output=True, text=True, check=True).stdout
    used = set(used_inodes(listing))
    named = subprocess.run(["debugfs", "-R", "ls -p -r /", device], capture_output=True, text=True).stdout
    numbers = {int(line.split("/")[1]) for line in named.splitlines() if line.startswith("/")}
    assert numbers and numbers <= used
    assert 2 in used and 11 in used  # the root directory and lost+found


def test_clamp_changes_only_newer_times_and_never_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("host file")
    os.utime(outside, (EPOCH + 999, EPOCH + 999))
    root = tmp_path / "root"
    (root / "old").mkdir(parents=True)
    (root / "old/file").write_text("x")
    os.utime(root / "old/file", (PACKAGE_TIME, PACKAGE_TIME))
    (root / "new").write_text("y")
    os.symlink(outside, root / "link")
    clamp_times(root, EPOCH)
    assert os.stat(root / "old/file").st_mtime == PACKAGE_TIME
    assert os.stat(root / "new").st_mtime == EPOCH
    assert os.lstat(root / "link").st_mtime == EPOCH
    assert os.stat(outside).st_mtime == EPOCH + 999


def test_newest_package_dates(tmp_path: Path) -> None:
    local = tmp_path / "var/lib/pacman/local"
    for name, built in (("a-1-1", 1_600_000_000), ("b-2-1", 1_650_000_000)):
        (local / name).mkdir(parents=True)
        (local / name / "desc").write_text(f"%NAME%\n{name}\n\n%BUILDDATE%\n{built}\n\n%SIZE%\n1\n")
    assert newest_pacman_build_date(tmp_path) == 1_650_000_000

    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    for path, when in (("usr/bin/a", 1_600_000_000), ("usr/lib/b", 1_610_000_000), ("etc/c", 1_700_000_000)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(path)
        os.utime(tmp_path / path, (when, when))
    (info / "pkg.list").write_text("/.\n/usr\n/usr/bin\n/usr/bin/a\n/usr/lib/b\n/usr/share/doc/gone\n/etc/c\n")
    # /etc is rewritten by maintainer scripts and an excluded file is missing: neither counts.
    assert newest_dpkg_file_date(tmp_path) == 1_610_000_000


def test_epoch_comes_from_the_definition_first(tmp_path: Path) -> None:
    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/a").write_text("a")
    os.utime(tmp_path / "usr/bin/a", (1_600_000_000, 1_600_000_000))
    (info / "a.list").write_text("/usr/bin/a\n")
    assert build_epoch(Reproducible(source_date_epoch=42), "debian", tmp_path) == (42, "the definition")
    assert build_epoch(Reproducible(), "debian", tmp_path) == (1_600_000_000, "the newest package")


def test_a_snapshot_replaces_the_build_mirrors_and_so_the_root_cache_key() -> None:
    from archami.config import load_definition
    from archami.distro.debian import DebianBackend
    from archami.image.cache import cache_inputs, cache_key
    from archami.image.reproducible import pin_snapshot

    loaded = load_definition(Path(__file__).resolve().parents[2] / "examples/debian.toml")
    spec = loaded.specs[0].model_copy(update={"mirrors": ("http://127.0.0.1/debian", "http://$region.mirror/")})
    pinned = pin_snapshot(spec, "http://127.0.0.1/archive/debian/20261201T000000Z")
    assert pinned.mirrors == ("http://127.0.0.1/archive/debian/20261201T000000Z", "http://$region.mirror/")
    assert pin_snapshot(spec, None) is spec
    backend = DebianBackend()
    assert cache_key(cache_inputs(backend, pinned)) != cache_key(cache_inputs(backend, spec))


def test_the_reproducible_table_is_checked() -> None:
    from pydantic import ValidationError

    assert Reproducible.model_validate({"source_date_epoch": 0}).source_date_epoch == 0
    for bad in ({"source_date_epoch": -1}, {"snapshot": "ftp://x/"}, {"snapshot_date": "2026-12-01"}):
        with pytest.raises(ValidationError):
            Reproducible.model_validate(bad)


def test_paravirtual_filesystem_without_partition_table(tmp_path: Path) -> None:
    """pv-grub's layout (the filesystem is the whole disk) is reproducible and compared the same way."""
    images = []
    for name, hostname in (("a", "tiny\n"), ("b", "tiny\n"), ("c", "changed\n")):
        root = _tree(tmp_path / name / "root", hostname)
        layout = plan_layout(300 * MIB, virtualization="paravirtual", esp_size=33 * MIB, seed="unit-pv")
        image = tmp_path / name / "image.raw"
        disk.assemble(image, layout, root, tmp_path / name, LOG, EPOCH)
        images.append(image)
        time.sleep(1.1)
    assert _sha256(images[0]) == _sha256(images[1])
    difference = compare_images(images[0], images[2])
    assert difference is not None and difference.first_file is not None
    assert (difference.region, difference.first_file.path) == ("filesystem (ext4)", "/etc/hostname")
