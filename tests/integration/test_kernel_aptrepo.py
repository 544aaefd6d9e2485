"""The kernel's apt repository, read by REAL apt through mmdebstrap with signature checks on: a
repository signed by the key the source line names installs; one signed by another key is refused.
Uses a metapackage only (no kernel build), served on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_support import debian_archive_mirrors, world_readable_dir
from repo_support import http_server

from archami.config import load_definition
from archami.kernel.aptrepo import KEY_FILE, write_apt_repository
from archami.kernel.debpkg import build_metapackage, read_deb
from archami.pacman.gpg import Gpg

pytestmark = pytest.mark.integration
LOG = logging.getLogger("test.kernel.apt")
EPOCH = 1700000000


def _repository(directory: Path, home: Path) -> str:
    build_metapackage("archami-test-kernel", "6.1.1-1", ["base-files"], "test\nA test metapackage.", directory,
                      epoch=EPOCH, log=LOG)  # fmt: skip
    with Gpg(home) as gpg:
        key = gpg.generate_key("archami kernel test <kernel-test@archami.invalid>")
        write_apt_repository(directory, gpg, key, epoch=EPOCH)
    return key


def _extract(target: Path, source_line: str) -> subprocess.CompletedProcess[str]:
    command = ["mmdebstrap", "--mode=root", "--variant=extract", "--include=archami-test-kernel", "bookworm",
               str(target), *debian_archive_mirrors(), source_line]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_apt_installs_from_the_signed_repository_and_refuses_another_key(tmp_path: Path) -> None:
    assert shutil.which("mmdebstrap"), "mmdebstrap missing: run make deps"
    with world_readable_dir("archami-apt-test-") as served:
        _check(served, tmp_path)


def _check(served: Path, tmp_path: Path) -> None:
    good, foreign = served / "good", served / "foreign"
    key = _repository(good, tmp_path / "gnupg")
    other = _repository(foreign, tmp_path / "gnupg-foreign")
    assert key != other
    info = read_deb(next(good.glob("*.deb")))
    assert (info.package, info.version) == ("archami-test-kernel", "6.1.1-1")
    packages = (good / "Packages").read_text()
    assert "Filename: ./archami-test-kernel_6.1.1-1_amd64.deb" in packages and "SHA256: " in packages
    with http_server(served) as url:
        ok = _extract(tmp_path / "ok.tar", f"deb [signed-by={good / KEY_FILE}] {url}/good/ ./")
        assert ok.returncode == 0, ok.stderr[-3000:]
        listing = subprocess.run(["tar", "-tf", tmp_path / "ok.tar"], capture_output=True, text=True, check=True)
        assert "./usr/share/doc/archami-test-kernel/copyright" in listing.stdout.splitlines()
        # The foreign repository's InRelease is signed by a key the source line does not trust.
        refused = _extract(tmp_path / "refused.tar", f"deb [signed-by={good / KEY_FILE}] {url}/foreign/ ./")
        assert refused.returncode != 0
        assert "NO_PUBKEY" in refused.stderr or "not signed" in refused.stderr or "signature" in refused.stderr


def test_apt_repo_prints_the_repositories_table_a_debian_definition_loads(tmp_path: Path) -> None:
    """`archami kernel apt-repo --json`: its `definition` table, pasted into a definition, is accepted."""
    served = tmp_path / "served"
    served.mkdir()
    build_metapackage("archami-test-kernel", "6.1.1-1", ["base-files"], "test\nA test metapackage.", served,
                      epoch=EPOCH, log=LOG)  # fmt: skip
    home = tmp_path / "gnupg"
    with Gpg(home) as gpg:
        key = gpg.generate_key("archami kernel test <kernel-test@archami.invalid>")
        archami = [sys.executable, "-m", "archami.cli", "kernel", "apt-repo", str(served), "--gnupghome", str(home),
                   "--key", key, "--url", "https://kernels.example/debian", "--json"]  # fmt: skip
        result = subprocess.run(archami, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = json.loads(result.stdout)
    definition = tmp_path / "d.toml"
    definition.write_text('name = "t"\ndistro = "debian"\nrelease = "trixie"\nmirrors = ["https://deb.example/debian"]\n'
                          '[kernel]\nstable = "linux-ec2"\n' + printed["definition"])
    (repository,) = load_definition(definition).specs[0].repositories
    assert repository.server == "https://kernels.example/debian/" and Path(str(repository.key)) == served / KEY_FILE
