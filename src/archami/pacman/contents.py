"""Staging a project package's files into an empty directory, one function per `[contents] kind`.

Paths are shared with the code that uses them: pacman-key reads /usr/share/pacman/keyrings on Arch,
the first-boot agent reads the mirror lists from its MIRROR_LISTS and is installed where install_into
puts it, so a package-installed agent and an image-installed one are the same files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from archami.config.publish import AWS_REGION
from archami.distro.arch_conf import mirrorlist
from archami.errors import ArchamiError
from archami.firstboot.agent.mirrors import GLOBAL_LIST, MIRROR_LISTS
from archami.firstboot.install import agent_files
from archami.pacman.definitions import PackageDefinition
from archami.pacman.gpg import key_file_fingerprints

KEYRING_DIR = "/usr/share/pacman/keyrings"  # Arch's pacman-key KEYRING_IMPORT_DIR
# The trust pacman-key --populate gives keys listed in NAME-trusted (archlinux-trusted uses the same).
OWNERTRUST = 4


@dataclass
class StagingContext:
    signing_key: str | None = None  # must be a trusted key of the keyring package, when given
    mirrors: list[str] = field(default_factory=list)  # the global mirror list, overriding the data's


def _write(root: Path, dest: str, data: bytes, mode: int = 0o644) -> None:
    path = root / dest.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def stage(definition: PackageDefinition, root: Path, ctx: StagingContext) -> None:
    """Fill `root` (empty) with the package's files; directories end up 0755 whatever the umask."""
    kind = definition.contents.kind
    {
        "files": _stage_files,
        "keyring": _stage_keyring,
        "mirrorlists": _stage_mirrorlists,
        "firstboot": _stage_firstboot,
    }[kind](definition, root, ctx)
    for dirpath, _, _ in os.walk(root):
        if Path(dirpath) != root:
            os.chmod(dirpath, 0o755)


def _stage_files(definition: PackageDefinition, root: Path, ctx: StagingContext) -> None:
    for spec in definition.contents.files:
        source = definition.directory / spec.source
        if not source.is_file():
            raise ArchamiError(f"{definition.pkgname}: {source} is missing")
        _write(root, spec.dest, source.read_bytes(), int(spec.mode, 8))


def trusted_fingerprints(definition: PackageDefinition) -> tuple[list[str], list[str]]:
    """(trusted, revoked) fingerprints of a keyring package's key file."""
    contents = definition.contents
    key_file = definition.directory / contents.key_file
    if not key_file.is_file():
        raise ArchamiError(f"{definition.pkgname}: {key_file} is missing (archami repo build creates it)")
    revoked = [fpr.replace(" ", "").upper() for fpr in contents.revoked]
    bad = [fpr for fpr in revoked if not re.fullmatch(r"[0-9A-F]{40}", fpr)]
    if bad:
        raise ArchamiError(f"{definition.pkgname}: revoked entries must be 40-hex fingerprints: {bad}")
    trusted = [fpr for fpr in key_file_fingerprints(key_file) if fpr not in revoked]
    if not trusted:
        raise ArchamiError(f"{definition.pkgname}: {key_file} holds no trusted public key")
    return trusted, revoked


def _stage_keyring(definition: PackageDefinition, root: Path, ctx: StagingContext) -> None:
    contents = definition.contents
    trusted, revoked = trusted_fingerprints(definition)
    if ctx.signing_key is not None and ctx.signing_key not in trusted:
        raise ArchamiError(
            f"{definition.pkgname}: the signing key {ctx.signing_key} is not among the trusted keys in "
            f"{definition.directory / contents.key_file}: instances would refuse the repository"
        )
    name = contents.keyring
    _write(root, f"{KEYRING_DIR}/{name}.gpg", (definition.directory / contents.key_file).read_bytes())
    _write(root, f"{KEYRING_DIR}/{name}-trusted", "".join(f"{f}:{OWNERTRUST}:\n" for f in trusted).encode())
    _write(root, f"{KEYRING_DIR}/{name}-revoked", "".join(f"{f}\n" for f in revoked).encode())


def _stage_mirrorlists(definition: PackageDefinition, root: Path, ctx: StagingContext) -> None:
    source = definition.directory / definition.contents.directory
    lists = {p.name: p.read_text() for p in sorted(source.glob("*.mirrorlist"))} if source.is_dir() else {}
    for name, text in lists.items():
        region = name.removesuffix(".mirrorlist")
        # AWS's own region names here (the agent on an instance is more lenient: never lock a user out).
        if name != GLOBAL_LIST and not AWS_REGION.fullmatch(region):
            raise ArchamiError(f"{source / name}: not an AWS region name (or {GLOBAL_LIST})")
        if not re.search(r"^\s*Server\s*=", text, re.M):
            raise ArchamiError(f"{source / name}: no 'Server =' line")
    if ctx.mirrors:
        header = "Global list: the mirrors given to `archami repo build`; used where no region list exists."
        lists[GLOBAL_LIST] = mirrorlist(ctx.mirrors, header=header)
    if GLOBAL_LIST not in lists:
        raise ArchamiError(
            f"{definition.pkgname}: no {GLOBAL_LIST} in {source} and no mirrors given "
            "(pass --mirror URL or set ARCHAMI_ARCH_MIRROR)"
        )
    for name, text in lists.items():
        _write(root, f"{MIRROR_LISTS}/{name}", text.encode())


def _stage_firstboot(definition: PackageDefinition, root: Path, ctx: StagingContext) -> None:
    # The same files install_into copies (without the image-specific settings and enable links).
    for path, data in agent_files():
        _write(root, path, data)
