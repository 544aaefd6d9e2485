"""Definitions of the `ec2` repository's own packages: `packages/<name>/package.toml`.

A definition is pacman metadata (the fields a PKGBUILD would hold) plus a `[contents]` table naming
where the files come from: `files` (listed files from the definition's directory), `keyring` (the
repository's public keys in pacman-key's layout), `mirrorlists` (per-region mirror lists) or
`firstboot` (archami's first-boot agent and its units).
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archami import __version__
from archami.errors import ConfigError
from archami.pacman.pkginfo import PkgInfo, PkgInfoError, full_version

DEFINITION_FILE = "package.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSpec(_Strict):
    source: str = Field(description="File in the definition's directory.")
    dest: str = Field(description="Absolute path in the installed system.")
    mode: str = Field(default="0644", pattern=r"^0?[0-7]{3,4}$")


class Contents(_Strict):
    kind: Literal["files", "keyring", "mirrorlists", "firstboot"]
    files: list[FileSpec] = Field(default_factory=list)
    keyring: str = Field(default="ec2", description="keyring: name pacman-key --populate takes.")
    key_file: str = Field(default="ec2.gpg", description="keyring: ASCII-armoured public keys to ship.")
    revoked: list[str] = Field(default_factory=list, description="keyring: fingerprints no longer trusted.")
    directory: str = Field(default="mirrorlists", description="mirrorlists: directory of *.mirrorlist files.")


class PackageDefinition(_Strict):
    pkgname: str
    pkgver: str | None = Field(default=None, description="Omitted for firstboot: archami's own version.")
    pkgrel: str = "1"
    epoch: str | None = None
    pkgdesc: str
    arch: str = "any"
    url: str = ""
    license: list[str] = Field(default_factory=list)
    depends: list[str] = Field(default_factory=list)
    optdepends: list[str] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    provides: list[str] = Field(default_factory=list)
    replaces: list[str] = Field(default_factory=list)
    backup: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    install: str | None = Field(default=None, description="Install scriptlet file in the directory.")
    contents: Contents

    # Set by load_definition, not by the file.
    directory: Path = Field(default=Path("."), exclude=True)
    sha256: str = Field(default="", exclude=True)

    @property
    def version(self) -> str:
        pkgver = self.pkgver or __version__.replace("-", "_")
        return full_version(pkgver, self.pkgrel, self.epoch)

    def pkginfo(self, packager: str) -> PkgInfo:
        return PkgInfo(
            pkgname=self.pkgname,
            pkgver=self.version,
            arch=self.arch,
            pkgdesc=self.pkgdesc,
            url=self.url,
            packager=packager,
            license=list(self.license),
            replaces=list(self.replaces),
            groups=list(self.groups),
            conflicts=list(self.conflicts),
            provides=list(self.provides),
            backup=list(self.backup),
            depends=list(self.depends),
            optdepends=list(self.optdepends),
        )

    def install_script(self) -> str | None:
        return (self.directory / self.install).read_text() if self.install else None


def load_definition(directory: Path) -> PackageDefinition:
    path = directory / DEFINITION_FILE
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode())
        definition = PackageDefinition.model_validate(data)
    except OSError as exc:
        raise ConfigError(str(path), "", exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(str(path), ".".join(str(p) for p in first["loc"]), first["msg"]) from None
    if definition.pkgname != directory.name:
        raise ConfigError(str(path), "pkgname", f"must match its directory name {directory.name!r}")
    if definition.pkgver is None and definition.contents.kind != "firstboot":
        raise ConfigError(str(path), "pkgver", "required (only the firstboot package takes archami's version)")
    try:
        definition.pkginfo("check").validate()
    except PkgInfoError as exc:
        raise ConfigError(str(path), "", str(exc)) from None
    return definition.model_copy(update={"directory": directory, "sha256": hashlib.sha256(raw).hexdigest()})


def load_definitions(packages_dir: Path) -> list[PackageDefinition]:
    """Every package definition under packages_dir, sorted by name."""
    if not packages_dir.is_dir():
        raise ConfigError(str(packages_dir), "", "no such directory of package definitions")
    found = sorted(p.parent for p in packages_dir.glob(f"*/{DEFINITION_FILE}"))
    if not found:
        raise ConfigError(str(packages_dir), "", f"no */{DEFINITION_FILE} package definitions")
    return [load_definition(directory) for directory in found]
