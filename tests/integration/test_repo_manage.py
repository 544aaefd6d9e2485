"""`archami repo add|remove|verify|build`: newest version wins, foreign signatures, verification failures,
and the build's guard against changed contents without a version bump. Real gpg, throwaway homes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from repo_support import TEST_MIRROR, copy_packages, require_tools
from typer.testing import CliRunner

from archami.cli import app
from archami.errors import ArchamiError
from archami.pacman.archive import build_package
from archami.pacman.gpg import Gpg
from archami.pacman.pkginfo import PkgInfo
from archami.pacman.project import build_repository
from archami.pacman.syncdb import read_db, write_db

pytestmark = pytest.mark.integration
runner = CliRunner()


@dataclass
class Keys:
    home: Path  # the repository's key
    key_file: Path
    other_home: Path  # someone else's (a kernel builder's)
    other_key: str
    other_key_file: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    require_tools("gpg", "gpgconf")
    base = tmp_path_factory.mktemp("repo-keys")
    with Gpg(base / "repo") as repo_gpg, Gpg(base / "other") as other_gpg:
        key = repo_gpg.generate_key("Repo Key <repo@example.invalid>")
        other = other_gpg.generate_key("Kernel Builder <kernel@example.invalid>")
        (base / "repo.asc").write_text(repo_gpg.export_armored([key]))
        (base / "other.asc").write_text(other_gpg.export_armored([other]))
        yield Keys(base / "repo", base / "repo.asc", base / "other", other, base / "other.asc")


def make_package(tmp: Path, name: str, version: str) -> Path:
    root = tmp / f"src-{name}-{version}"
    (root / "usr/share" / name).mkdir(parents=True, exist_ok=True)
    (root / "usr/share" / name / "version").write_text(version + "\n")
    return build_package(root, PkgInfo(pkgname=name, pkgver=version, arch="x86_64"), tmp / "built", source_date_epoch=1)


def cli(*args: str | Path) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.exception


def versions(repo: Path) -> dict[str, str]:
    return {e.name: e.version for e in read_db(repo / "ec2.db.tar.zst")}


def test_add_keeps_only_the_newest(keys: Keys, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    home = ("--gnupghome", keys.home)
    assert cli("repo", "add", repo, make_package(tmp_path, "tool", "1.0-1"), *home)[0] == 0
    assert (repo / "tool-1.0-1-x86_64.pkg.tar.zst.sig").exists() and (repo / "ec2.db.sig").exists()
    code, out, _ = cli("repo", "add", repo, make_package(tmp_path, "tool", "1.1-1"), *home, "--json")
    assert code == 0 and json.loads(out)[0]["action"] == "upgraded"
    assert not (repo / "tool-1.0-1-x86_64.pkg.tar.zst").exists()
    assert not (repo / "tool-1.0-1-x86_64.pkg.tar.zst.sig").exists()
    code, out, _ = cli("repo", "add", repo, make_package(tmp_path, "tool", "1.0.9-5"), *home, "--json")
    assert json.loads(out)[0]["action"] == "skipped" and versions(repo) == {"tool": "1.1-1"}
    cli("repo", "add", repo, make_package(tmp_path, "tool", "1:0.1-1"), *home)  # an epoch beats any version
    assert versions(repo) == {"tool": "1:0.1-1"}
    assert cli("repo", "verify", repo, "--keyring", keys.key_file)[0] == 0


def test_remove(keys: Keys, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    packages = [make_package(tmp_path, n, "1-1") for n in ("one", "two")]
    assert cli("repo", "add", repo, *packages, "--gnupghome", keys.home)[0] == 0
    assert cli("repo", "remove", repo, "one", "--gnupghome", keys.home)[0] == 0
    assert versions(repo) == {"two": "1-1"} and not (repo / packages[0].name).exists()
    code, _, exc = cli("repo", "remove", repo, "nothing-like-it", "--gnupghome", keys.home)
    assert code != 0 and isinstance(exc, ArchamiError) and "nothing-like-it" in str(exc)
    assert cli("repo", "verify", repo, "--keyring", keys.key_file)[0] == 0


def test_packages_signed_elsewhere(keys: Keys, tmp_path: Path) -> None:
    kernel = make_package(tmp_path, "linux-ec2", "6.12.1-1")
    with Gpg(keys.other_home) as other:
        foreign_sig = other.sign_detached(kernel, keys.other_key).read_bytes()
    repo = tmp_path / "repo"
    code, _, exc = cli("repo", "add", repo, kernel, "--gnupghome", keys.home)
    assert code != 0 and "not a trusted key" in str(exc)
    assert not (repo / "ec2.db.tar.zst").exists() and not (repo / kernel.name).exists()  # nothing half-done
    keyrings = ("--keyring", keys.other_key_file)
    assert cli("repo", "add", repo, kernel, "--gnupghome", keys.home, *keyrings)[0] == 0
    assert (repo / (kernel.name + ".sig")).read_bytes() == foreign_sig  # the builder's signature is kept
    assert cli("repo", "verify", repo, "--keyring", keys.key_file, *keyrings)[0] == 0
    assert cli("repo", "verify", repo, "--keyring", keys.key_file)[0] == 1  # its key is not ours
    assert cli("repo", "add", repo, kernel, "--gnupghome", keys.home, "--resign")[0] == 0
    assert cli("repo", "verify", repo, "--keyring", keys.key_file)[0] == 0


def test_verify_finds_what_is_wrong(keys: Keys, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert cli("repo", "add", repo, make_package(tmp_path, "a", "1-1"), "--gnupghome", keys.home)[0] == 0

    def failures() -> list[str]:
        code, out, _ = cli("repo", "verify", repo, "--keyring", keys.key_file, "--json")
        checks = json.loads(out)
        assert (code == 0) == all(c["ok"] for c in checks)
        return [c["name"] for c in checks if not c["ok"]]

    assert failures() == []
    # A .files database that no longer matches .db (e.g. a half-finished manual edit), re-signed.
    entries = read_db(repo / "ec2.files.tar.zst")
    entries[0].desc = "edited"
    write_db(repo / "ec2.files.tar.zst", entries, with_files=True)
    with Gpg(keys.home) as gpg:
        gpg.sign_detached(repo / "ec2.files.tar.zst", gpg.secret_fingerprints()[0])
    assert failures() == ["databases agree"]
    (repo / "a-1-1-x86_64.pkg.tar.zst").unlink()
    assert "a-1-1-x86_64.pkg.tar.zst" in failures()


def test_build_guards_versions_and_keys(keys: Keys, tmp_path: Path) -> None:
    packages = copy_packages(tmp_path / "packages")
    out, home = tmp_path / "repo", tmp_path / "gnupg"
    code, stdout, _ = cli("repo", "build", "--packages", packages, "--out", out, "--gnupghome", home,
                          "--mirror", TEST_MIRROR, "--json")  # fmt: skip
    assert code == 0, stdout
    report = json.loads(stdout)
    assert report["key_created"] and {c["action"] for c in report["changes"]} == {"added"}
    assert {name for name, _ in report["files"]} >= {"ec2.db", "ec2.db.sig", "ec2.files", "ec2.files.sig"}

    again = build_repository(packages, out, gnupghome=home, mirrors=[TEST_MIRROR])
    assert {c.action for c in again.changes} == {"unchanged"}

    lists = packages / "ec2-pacman-mirrors/mirrorlists"
    (lists / "eu-west-1.mirrorlist").write_text("Server = http://127.0.0.1:9/eu/$repo/os/$arch\n")
    with pytest.raises(ArchamiError, match="raise pkgrel"):
        build_repository(packages, out, gnupghome=home, mirrors=[TEST_MIRROR])
    toml = packages / "ec2-pacman-mirrors/package.toml"
    toml.write_text(toml.read_text().replace('pkgrel = "1"', 'pkgrel = "2"'))
    bumped = build_repository(packages, out, gnupghome=home, mirrors=[TEST_MIRROR])
    changed = [(c.name, c.action) for c in bumped.changes if c.action != "unchanged"]
    assert changed == [("ec2-pacman-mirrors", "upgraded")]
    assert not list(out.glob("ec2-pacman-mirrors-*-1-any.pkg.tar.zst"))
    assert cli("repo", "verify", out, "--keyring", packages / "ec2-keyring/ec2.gpg")[0] == 0

    # A GnuPG home without the repository's key cannot sign for it.
    with pytest.raises(ArchamiError, match="no secret key"):
        build_repository(packages, tmp_path / "other-out", gnupghome=keys.home, mirrors=[TEST_MIRROR])
    with Gpg(keys.home) as gpg:
        repo_key = gpg.secret_fingerprints()[0]
    with pytest.raises(ArchamiError, match="not among the trusted keys"):
        build_repository(packages, tmp_path / "other-out", gnupghome=keys.home, key=repo_key, mirrors=[TEST_MIRROR])


def test_build_is_reproducible(tmp_path: Path) -> None:
    packages = copy_packages(tmp_path / "packages")
    home = tmp_path / "gnupg"
    first = build_repository(packages, tmp_path / "one", gnupghome=home, mirrors=[TEST_MIRROR], epoch=1764000000)
    build_repository(packages, tmp_path / "two", gnupghome=home, mirrors=[TEST_MIRROR], epoch=1764000000)
    built = sorted(p.name for p in (tmp_path / "one").glob("*.pkg.tar.zst"))
    assert len(built) == 3 and first.key
    for name in built:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    # The databases differ only in the package signatures they embed (OpenPGP signatures carry a time).
    for db in ("ec2.db.tar.zst", "ec2.files.tar.zst"):
        one, two = read_db(tmp_path / "one" / db), read_db(tmp_path / "two" / db)
        assert [replace(e, pgpsig="") for e in one] == [replace(e, pgpsig="") for e in two], db


def test_passphrase_protected_key(tmp_path: Path) -> None:
    """A maintainer's protected key signs unattended with --passphrase-file (and not without it)."""
    home, secret = tmp_path / "gnupg", tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    with Gpg(home) as gpg:
        gpg.ensure_home()
        unlock = ["--pinentry-mode", "loopback", "--passphrase-file", str(secret)]
        gpg.run([*unlock, "--quick-generate-key", "Protected <p@example.invalid>", "ed25519", "sign", "never"])
    package = make_package(tmp_path, "tool", "1-1")
    code, _, exc = cli("repo", "add", tmp_path / "repo", package, "--gnupghome", home)
    assert code != 0 and "failed" in str(exc)
    assert [p.name for p in (tmp_path / "repo").iterdir()] == [".ec2.lck"]  # nothing half-added
    assert cli("repo", "add", tmp_path / "repo", package, "--gnupghome", home, "--passphrase-file", secret)[0] == 0
    assert (tmp_path / "repo/ec2.db.sig").exists()
