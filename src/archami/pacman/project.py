"""`archami repo build`: the project's own packages (packages/*/package.toml) built into a signed repository.

Builds are reproducible, which makes one safety check exact: a package whose version is already in the
repository is rebuilt with that entry's build date, and must install and declare exactly the same (only
.BUILDINFO may differ). If it does not, its contents changed without a version bump, and pacman on
instances would never see the change.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from archami import __version__
from archami.errors import ArchamiError
from archami.pacman.archive import build_package, payload_digest
from archami.pacman.contents import StagingContext, stage, trusted_fingerprints
from archami.pacman.definitions import PackageDefinition, load_definitions
from archami.pacman.gpg import Gpg
from archami.pacman.pkginfo import BuildInfo
from archami.pacman.repo import Change, Repository, Signer, add_packages
from archami.pacman.vercmp import vercmp

DEFAULT_GNUPGHOME = Path.home() / ".local/share/archami/gnupg"


@dataclass
class BuildReport:
    directory: Path
    name: str
    key: str
    key_created: bool = False
    key_file_written: Path | None = None
    changes: list[Change] = field(default_factory=list)
    files: list[tuple[str, int]] = field(default_factory=list)  # every file in the repository, with size


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH when set (reproducible-builds convention), else now."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if value:
        if not value.isdigit():
            raise ArchamiError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, not {value!r}")
        return int(value)
    return int(time.time())


def _keyring_definition(definitions: list[PackageDefinition]) -> PackageDefinition | None:
    keyrings = [d for d in definitions if d.contents.kind == "keyring"]
    if len(keyrings) > 1:
        raise ArchamiError(f"more than one keyring package: {', '.join(d.pkgname for d in keyrings)}")
    return keyrings[0] if keyrings else None


def resolve_signing_key(gpg: Gpg, key: str | None, keyring: PackageDefinition | None) -> tuple[str, bool]:
    """(fingerprint, created): the given key; else a key from the keyring package whose secret part is in
    the GnuPG home; else the home's only secret key; else a newly generated one."""
    if key:
        return gpg.fingerprint(key), False
    secrets = gpg.secret_fingerprints()
    if keyring is not None and (keyring.directory / keyring.contents.key_file).exists():
        trusted, _ = trusted_fingerprints(keyring)
        usable = [fpr for fpr in trusted if fpr in secrets]
        if not usable:
            raise ArchamiError(
                f"no secret key in {gpg.home} for the trusted keys of "
                f"{keyring.directory / keyring.contents.key_file} ({', '.join(trusted)}): "
                "point --gnupghome at the repository's key"
            )
        return usable[0], False
    if len(secrets) > 1:
        raise ArchamiError(f"{gpg.home} has several secret keys: choose one with --key")
    if secrets:
        return secrets[0], False
    return gpg.generate_key(), True


def existing_signing_key(gpg: Gpg, key: str | None) -> str:
    """The key to sign with when changing an existing repository: never a new one."""
    if key:
        return gpg.fingerprint(key)
    secrets = gpg.secret_fingerprints()
    if len(secrets) != 1:
        found = "no secret key" if not secrets else "several secret keys"
        raise ArchamiError(f"{found} in {gpg.home}: name the repository's key with --key (and --gnupghome)")
    return secrets[0]


def _build_one(
    definition: PackageDefinition, signer_uid: str, epoch: int, ctx: StagingContext, out: Path
) -> Path:
    with tempfile.TemporaryDirectory(prefix=f"archami-{definition.pkgname}-") as tmp:
        staging = Path(tmp) / "root"
        staging.mkdir()
        stage(definition, staging, ctx)
        info = definition.pkginfo(packager=signer_uid)
        buildinfo = BuildInfo(
            pkgname=info.pkgname,
            pkgbase=info.pkgbase,
            pkgver=info.pkgver,
            pkgarch=info.arch,
            pkgbuild_sha256sum=definition.sha256,
            packager=signer_uid,
            builddate=epoch,
            buildtoolver=__version__,
        )
        return build_package(
            staging, info, out, source_date_epoch=epoch, buildinfo=buildinfo,
            install_script=definition.install_script(),
        )


def build_repository(
    packages_dir: Path,
    out_dir: Path,
    *,
    gnupghome: Path = DEFAULT_GNUPGHOME,
    key: str | None = None,
    name: str = "ec2",
    mirrors: list[str] | None = None,
    epoch: int | None = None,
    passphrase_file: Path | None = None,
) -> BuildReport:
    """Build every package defined in packages_dir and add the new ones to the signed repository out_dir.

    Without a key file in the keyring package (first run), the signing key's public part is written
    there: commit it, it is what images and `archami repo verify` trust.
    """
    definitions = load_definitions(packages_dir)
    keyring = _keyring_definition(definitions)
    with Gpg(gnupghome, passphrase_file) as gpg:
        fingerprint, created = resolve_signing_key(gpg, key, keyring)
        report = BuildReport(out_dir, name, fingerprint, key_created=created)
        if keyring is not None:
            key_file = keyring.directory / keyring.contents.key_file
            if not key_file.exists():
                key_file.write_text(gpg.export_armored([fingerprint]))
                report.key_file_written = key_file
        signer = Signer(gpg, fingerprint)
        uid = gpg.user_id(fingerprint)
        repo = Repository.open(out_dir, name)
        current = repo.entries()
        ctx = StagingContext(signing_key=fingerprint, mirrors=list(mirrors or []))
        built: list[Path] = []
        with tempfile.TemporaryDirectory(prefix="archami-repo-build-") as tmp:
            for definition in definitions:
                existing = current.get(definition.pkgname)
                version = definition.version
                if existing is not None and vercmp(version, existing.version) < 0:
                    raise ArchamiError(
                        f"{definition.pkgname} {version} is older than {existing.version} in {out_dir}"
                    )
                same_version = existing is not None and existing.version == version
                stamp = existing.builddate if existing is not None and same_version else epoch
                package = _build_one(definition, uid, stamp or source_date_epoch(), ctx, Path(tmp))
                if existing is not None and same_version:
                    published = out_dir / existing.filename
                    if published.exists() and payload_digest(published) == payload_digest(package):
                        report.changes.append(Change(definition.pkgname, "unchanged", version))
                        continue
                    raise ArchamiError(
                        f"{definition.pkgname}: contents changed but version {version} is already in "
                        f"{out_dir}: raise pkgrel (or pkgver) in {definition.directory / 'package.toml'}"
                    )
                built.append(package)
            if built or not repo.exists():
                report.changes.extend(add_packages(repo, built, signer=signer))
    report.files = sorted((p.name, p.lstat().st_size) for p in out_dir.iterdir() if not p.name.startswith("."))
    return report
