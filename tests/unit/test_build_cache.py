"""Root cache: keys change with what determines the root and only with that; tarballs round-trip."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from archami.config import parse_definition
from archami.config.matrix import expand
from archami.distro.debian import DebianBackend
from archami.image.cache import KEEP_PER_FAMILY, MAX_ROOT_AGE, RootCache, cache_inputs, cache_key

BASE = """
name = "t"
distro = "debian"
release = "bookworm"
kernel = { stable = "linux-image-cloud-amd64", cmdline = ["quiet"] }
packages = { add = ["openssh-server", "sudo"] }
"""


def _key(extra: str = "", base: str = BASE) -> str:
    definition = parse_definition(base + extra)
    return cache_key(cache_inputs(DebianBackend(), expand(definition)[0]))


@pytest.mark.parametrize(
    "change",
    [
        '[ssh]\npermit_root_login = "no"\n',
        '[[files]]\npath = "/etc/motd"\ncontent = "hi"\n',
        '[services]\nenable = ["ssh.service"]\n',
        'description = "other"\n',
        '[disk]\nsize = "4GiB"\n',
        '[firstboot]\ndefault_user = "admin"\n',
    ],
)
def test_config_only_changes_keep_the_key(change: str) -> None:
    assert _key(change) == _key()


def test_kernel_cmdline_and_initramfs_modules_keep_the_key() -> None:
    changed = BASE.replace('cmdline = ["quiet"]', 'cmdline = ["console=ttyS0"], initramfs_modules = ["nvme"]')
    assert _key(base=changed) == _key()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"sudo"]', '"sudo", "less"]'),
        ('release = "bookworm"', 'release = "trixie"'),
        ('stable = "linux-image-cloud-amd64"', 'stable = "linux-image-amd64"'),
    ],
)
def test_package_set_and_release_change_the_key(old: str, new: str) -> None:
    assert _key(base=BASE.replace(old, new)) != _key()


def test_mirror_and_network_stack_change_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _key()
    assert _key('mirrors = ["http://127.0.0.1:9/debian"]\n') != plain
    assert _key('[network]\nstack = "dhclient"\n') != plain
    monkeypatch.setenv("ARCHAMI_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    assert _key() != plain


def _root(path: Path) -> Path:
    (path / "etc").mkdir(parents=True)
    (path / "etc/config").write_text("x")
    (path / "etc/secret").write_text("s")
    (path / "etc/secret").chmod(0o600)
    (path / "vmlinuz").symlink_to("boot/vmlinuz-1")
    (path / "empty").mkdir()
    return path


def test_store_and_restore_round_trip(tmp_path: Path) -> None:
    definition = parse_definition(BASE)
    variant = expand(definition)[0].variant
    cache = RootCache(tmp_path / "cache")
    log = logging.getLogger("t")
    assert cache.lookup(variant, "k" * 64) is None
    tarball = cache.store(variant, "k" * 64, {"a": 1}, _root(tmp_path / "src"), log)
    assert cache.lookup(variant, "k" * 64) == tarball
    assert not list(cache.roots.glob(".*.tmp"))  # stored atomically
    restored = tmp_path / "restored"
    cache.restore(tarball, restored, log)
    assert (restored / "etc/config").read_text() == "x"
    assert (restored / "etc/secret").stat().st_mode & 0o777 == 0o600
    assert os.readlink(restored / "vmlinuz") == "boot/vmlinuz-1"
    assert (restored / "empty").is_dir()


def test_old_roots_are_pruned(tmp_path: Path) -> None:
    definition = parse_definition(BASE)
    variant = expand(definition)[0].variant
    cache = RootCache(tmp_path / "cache")
    source = _root(tmp_path / "src")
    log = logging.getLogger("t")
    keys = [f"{i:064d}" for i in range(KEEP_PER_FAMILY + 2)]
    for i, key in enumerate(keys):
        path = cache.store(variant, key, {}, source, log)
        os.utime(path, (1000 + i, 1000 + i))
    cache.prune(variant)
    kept = {p.name for p in cache.roots.glob("*.tar")}
    assert kept == {cache.tarball(variant, k).name for k in keys[-KEEP_PER_FAMILY:]}


def _backdate(cache: RootCache, tarball: Path, seconds: float) -> None:
    record = tarball.with_suffix(".json")
    data = json.loads(record.read_text())
    data["created"] = time.time() - seconds
    record.write_text(json.dumps(data))


def test_a_root_older_than_a_day_is_not_reused(tmp_path: Path) -> None:
    """A weekly re-release must ship that week's security updates, whatever the key says."""
    variant = expand(parse_definition(BASE))[0].variant
    cache = RootCache(tmp_path / "cache")
    log = logging.getLogger("t")
    tarball = cache.store(variant, "k" * 64, {}, _root(tmp_path / "src"), log)
    _backdate(cache, tarball, MAX_ROOT_AGE - 60)
    assert cache.lookup(variant, "k" * 64) == tarball
    cache.restore(tarball, tmp_path / "restored", log)  # a restore marks use for pruning, not freshness
    _backdate(cache, tarball, MAX_ROOT_AGE + 60)
    os.utime(tarball)
    assert cache.lookup(variant, "k" * 64) is None
    assert cache.lookup(variant, "k" * 64, max_age=MAX_ROOT_AGE * 7) == tarball


def test_a_root_without_its_record_is_not_reused(tmp_path: Path) -> None:
    variant = expand(parse_definition(BASE))[0].variant
    cache = RootCache(tmp_path / "cache")
    tarball = cache.store(variant, "k" * 64, {}, _root(tmp_path / "src"), logging.getLogger("t"))
    tarball.with_suffix(".json").write_text("{not json")
    assert cache.lookup(variant, "k" * 64) is None
    tarball.with_suffix(".json").unlink()
    assert cache.lookup(variant, "k" * 64) is None
