"""A Debian definition's extra repositories (`[[repositories]]`): flat, signed apt repositories such as the
one `archami kernel apt-repo` writes for linux-ec2 (`deb [signed-by=KEY] URL ./`).

The build hands mmdebstrap one source line per repository with its key copied where apt's unprivileged
`_apt` user can read it (a definition's key may sit in a private directory); the image gets the key in
/etc/apt/keyrings (where Debian puts third-party repository keys) and a deb822 NAME.sources for
instances, and never the build's line, whose key path exists only on the build host. There is no
`trusted=yes`: a repository without a key is refused.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archami.config.schema import Repository
from archami.config.spec import ImageSpec
from archami.errors import ArchamiError

KEYRING_DIR = "/etc/apt/keyrings"
SOURCES_DIR = "/etc/apt/sources.list.d"
FLAT_SUITE = "./"
_KEY_DIR_PREFIX = "archami-apt-keys-"
# A build line, wherever mmdebstrap wrote it (sources.list, or sources.list.d/*.list when it was given a
# deb822 file too): recognised by the build's temporary key directory.
_BUILD_LINE = re.compile(rf"^deb \[signed-by=\S*/{_KEY_DIR_PREFIX}[^/\]]+/archami-[^\]]+\] .*$\n?", re.M)


def _key(repository: Repository) -> Path:
    if not repository.key:
        raise ArchamiError(f"repository {repository.name!r}: a Debian repository needs `key` (apt checks it "
                           "with signed-by; archami never writes trusted=yes)")
    path = Path(repository.key)
    if not path.is_file():
        raise ArchamiError(f"repository {repository.name!r}: key {repository.key!r} not found")
    return path


def key_name(repository: Repository) -> str:
    """apt reads a signed-by file as armoured only when it is called *.asc."""
    armoured = _key(repository).read_bytes().lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    return f"archami-{repository.name}.{'asc' if armoured else 'gpg'}"


def _line(server: str, key: str) -> str:
    return f"deb [signed-by={key}] {server.rstrip('/')}/ {FLAT_SUITE}"


def check(spec: ImageSpec) -> None:
    """Refuse, before anything is built, repositories apt could not use."""
    for repository in spec.repositories:
        key_name(repository)


@contextmanager
def build_sources(spec: ImageSpec) -> Iterator[list[str]]:
    """mmdebstrap's source lines for the repositories, their keys readable by `_apt` while they are used."""
    if not spec.repositories:
        yield []
        return
    keys = Path(tempfile.mkdtemp(prefix=_KEY_DIR_PREFIX))
    try:
        keys.chmod(0o755)
        lines = []
        for repository in spec.repositories:
            copy = keys / key_name(repository)
            shutil.copyfile(_key(repository), copy)
            copy.chmod(0o644)
            lines.append(_line(repository.server, str(copy)))
        yield lines
    finally:
        shutil.rmtree(keys, ignore_errors=True)


def deb822(repository: Repository) -> str:
    server = (repository.instance_server or repository.server).rstrip("/") + "/"
    return (f"# Written by archami: the definition's repository {repository.name!r}.\n"
            f"Types: deb\nURIs: {server}\nSuites: {FLAT_SUITE}\nSigned-By: {KEYRING_DIR}/{key_name(repository)}\n")


def configure_for_instances(root: Path, spec: ImageSpec) -> None:
    """Take the build's lines out of sources.list; give instances each repository they use, key and all."""
    apt = root / "etc/apt"
    for listing in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if not listing.is_file():
            continue
        text = listing.read_text()
        kept = _BUILD_LINE.sub("", text)
        if kept == text:
            continue
        if kept.strip() or listing.name == "sources.list":
            listing.write_text(kept)
        else:
            listing.unlink()  # a file of mmdebstrap's that held only build lines
    for repository in spec.repositories:
        if not repository.instances:
            continue
        keyring = root / KEYRING_DIR.lstrip("/")
        keyring.mkdir(parents=True, exist_ok=True)
        target = keyring / key_name(repository)
        shutil.copyfile(_key(repository), target)
        target.chmod(0o644)
        sources = root / SOURCES_DIR.lstrip("/") / f"{repository.name}.sources"
        sources.parent.mkdir(parents=True, exist_ok=True)
        sources.write_text(deb822(repository))
