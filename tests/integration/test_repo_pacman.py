"""Repositories written by archami, read by REAL pacman (SigLevel = Required, over loopback HTTP).

One `archami repo build` per module (throwaway GnuPG home and key); pacman installs the packages into
fresh roots, `pacman-key --populate ec2` works from the installed ec2-keyring, and tampered, unsigned or
foreign-signed repositories are refused, by pacman and by `archami repo verify`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from repo_support import (
    TEST_MIRROR,
    copy_packages,
    flip_byte,
    http_server,
    pacman_install,
    pacman_keyring,
    require_tools,
    stop_agent,
)
from typer.testing import CliRunner

from archami import __version__
from archami.cli import app
from archami.pacman.gpg import Gpg
from archami.pacman.project import BuildReport, build_repository

pytestmark = pytest.mark.integration

PACKAGES = ["ec2-keyring", "ec2-pacman-mirrors", "archami-firstboot"]


@dataclass
class Built:
    base: Path
    served: Path
    report: BuildReport
    key_file: Path
    url: str = ""

    def variant(self, name: str) -> Path:
        """A copy of the good repository under served/, to break on purpose."""
        target = self.served / name
        shutil.copytree(self.served / "good", target, symlinks=True)
        return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    assert os.geteuid() == 0, "pacman -S and mount namespaces need root: run the integration tests as root"
    require_tools("pacman", "pacman-key", "gpg", "gpgconf", "unshare", "mount")
    base = tmp_path_factory.mktemp("repo-pacman")
    packages = copy_packages(base / "packages")
    served = base / "served"
    report = build_repository(packages, served / "good", gnupghome=base / "gnupg", mirrors=[TEST_MIRROR])
    assert report.key_created and report.key_file_written == packages / "ec2-keyring/ec2.gpg"
    result = Built(base, served, report, packages / "ec2-keyring/ec2.gpg")
    with http_server(served) as url:
        result.url = url
        yield result


@pytest.fixture(scope="module")
def trusted_gpgdir(built: Built) -> Path:
    return pacman_keyring(built.base / "gpg-manual", built.key_file, [built.report.key])


@pytest.fixture(scope="module")
def installed_root(built: Built, trusted_gpgdir: Path) -> Path:
    root = built.base / "root-good"
    result = pacman_install(root, f"{built.url}/good", trusted_gpgdir, PACKAGES)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def test_pacman_installs_the_project_packages(built: Built, installed_root: Path) -> None:
    root, key = installed_root, built.report.key
    keyrings = root / "usr/share/pacman/keyrings"
    assert (keyrings / "ec2.gpg").read_bytes() == built.key_file.read_bytes()
    assert (keyrings / "ec2-trusted").read_text() == f"{key}:4:\n"
    assert (keyrings / "ec2-revoked").read_text() == ""
    assert TEST_MIRROR in (root / "usr/share/ec2-pacman-mirrors/global.mirrorlist").read_text()
    assert (root / "usr/lib/archami/firstboot.py").is_file()
    assert (root / "usr/lib/systemd/system/archami-firstboot.service").is_file()
    query = ["pacman", "--root", str(root), "--dbpath", str(root / "var/lib/pacman")]
    versions = subprocess.run([*query, "-Q"], capture_output=True, text=True, check=True).stdout.split("\n")
    assert f"archami-firstboot {__version__}-1" in versions
    # -Qkk compares every installed file with the package's .MTREE (size, mode, digests, link targets).
    check = subprocess.run([*query, "-Qkk"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for name in PACKAGES:
        assert f"{name}: " in check.stdout and "0 altered files" in check.stdout


def test_pacman_key_populate_ec2_from_the_keyring_package(built: Built, installed_root: Path) -> None:
    """Trust the key only through the installed ec2-keyring, then install from the repository again."""
    gpgdir = built.base / "gpg-populated"
    # Debian's pacman-key reads /usr/share/keyrings, Arch's /usr/share/pacman/keyrings: show it the
    # package's directory in a private mount namespace (the host's keyrings are untouched).
    script = (
        f'mount --bind "{installed_root}/usr/share/pacman/keyrings" /usr/share/keyrings && '
        f'pacman-key --gpgdir "{gpgdir}" --init && pacman-key --gpgdir "{gpgdir}" --populate ec2'
    )
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True)  # fmt: skip
    stop_agent(gpgdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Locally signing trusted keys" in result.stdout + result.stderr
    listing = Gpg(gpgdir).run(["--with-colons", "--list-keys", built.report.key]).stdout.decode()
    validity = next(line.split(":")[1] for line in listing.splitlines() if line.startswith("pub:"))
    assert validity == "f", f"populated key is not fully valid: {validity!r}"
    second = pacman_install(built.base / "root-populated", f"{built.url}/good", gpgdir, ["ec2-pacman-mirrors"])
    assert second.returncode == 0, second.stdout + second.stderr


def _refused(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert any(p in output for p in phrases), output


def test_tampered_package_refused(built: Built, trusted_gpgdir: Path) -> None:
    repo = built.variant("tampered-package")
    flip_byte(next(repo.glob("ec2-pacman-mirrors-*.pkg.tar.zst")))
    root = built.base / "root-tampered-package"
    result = pacman_install(root, f"{built.url}/tampered-package", trusted_gpgdir, ["ec2-pacman-mirrors"])
    _refused(result, "invalid or corrupted package", "checksum", "signature")
    assert not (root / "usr/share/ec2-pacman-mirrors").exists()


def test_tampered_database_refused(built: Built, trusted_gpgdir: Path) -> None:
    repo = built.variant("tampered-db")
    flip_byte(repo / "ec2.db.tar.zst")
    result = pacman_install(built.base / "root-tampered-db", f"{built.url}/tampered-db", trusted_gpgdir, PACKAGES)
    _refused(result, "invalid or corrupted database", "signature")


def test_unsigned_database_refused(built: Built, trusted_gpgdir: Path) -> None:
    repo = built.variant("unsigned-db")
    for sig in ("ec2.db.sig", "ec2.db.tar.zst.sig"):
        (repo / sig).unlink()
    result = pacman_install(built.base / "root-unsigned", f"{built.url}/unsigned-db", trusted_gpgdir, PACKAGES)
    _refused(result, "missing required signature", "failed retrieving file 'ec2.db.sig'")


def test_repository_signed_by_another_key_refused(built: Built, trusted_gpgdir: Path) -> None:
    packages = copy_packages(built.base / "foreign-packages")
    foreign = built.served / "foreign"
    report = build_repository(packages, foreign, gnupghome=built.base / "foreign-gnupg", mirrors=[TEST_MIRROR])
    assert report.key != built.report.key
    result = pacman_install(built.base / "root-foreign", f"{built.url}/foreign", trusted_gpgdir, PACKAGES)
    _refused(result, "unknown trust", "signature", "invalid")


def test_archami_repo_verify(built: Built) -> None:
    runner = CliRunner()

    def verify(name: str) -> int:
        args = ["repo", "verify", str(built.served / name), "--keyring", str(built.key_file), "--json"]
        return runner.invoke(app, args).exit_code

    assert verify("good") == 0
    flip_byte(next(built.variant("verify-package").glob("archami-firstboot-*.pkg.tar.zst")))
    flip_byte(built.variant("verify-db") / "ec2.files.tar.zst")
    (built.variant("verify-unsigned") / "ec2.db.tar.zst.sig").unlink()
    signature = next(built.variant("verify-signature").glob("ec2-keyring-*.pkg.tar.zst.sig"))
    flip_byte(signature, offset=len(signature.read_bytes()) - 3)
    (built.variant("verify-stray") / "stray-1-1-any.pkg.tar.zst").write_bytes(b"x")
    for broken in ("verify-package", "verify-db", "verify-unsigned", "verify-signature", "verify-stray"):
        assert verify(broken) == 1, broken


def test_pacman_reads_the_files_database(built: Built, trusted_gpgdir: Path) -> None:
    """`pacman -Fy` downloads and checks ec2.files; `pacman -Fl` lists a package's files from it."""
    dbpath = built.base / "files-db"
    dbpath.mkdir()
    config = built.base / "files-pacman.conf"
    config.write_text(f"[options]\nArchitecture = x86_64\nSigLevel = Required\n[ec2]\nServer = {built.url}/good\n")
    base = ["pacman", "--noconfirm", "--dbpath", str(dbpath), "--gpgdir", str(trusted_gpgdir), "--config", str(config)]
    sync = subprocess.run([*base, "-Fy"], capture_output=True, text=True)
    stop_agent(trusted_gpgdir)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    listing = subprocess.run([*base, "-Fl", "ec2-keyring"], capture_output=True, text=True, check=True).stdout
    assert "ec2-keyring usr/share/pacman/keyrings/ec2-trusted" in listing.splitlines()
    owner = subprocess.run([*base, "-F", "/usr/share/ec2-pacman-mirrors/global.mirrorlist"], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert "ec2/ec2-pacman-mirrors" in owner
