"""The build's own pacman keyring: never the host's, never shipped in the image.

`pacman-key --populate archlinux` reads the archlinux-keyring files from the host (Debian's
archlinux-keyring package installs them in /usr/share/keyrings, the directory Debian's pacman-key is
built to read). Populating costs ~25 s, so the populated keyring is kept in the cache directory, keyed by
the digest of those files, and copied into each build's work directory.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from archami.errors import ArchamiError
from archami.gnupg_home import reachable_home
from archami.runner import run

# Where pacman-key reads `--populate` keyrings: Arch's pacman looks in /usr/share/pacman/keyrings, Debian's
# is patched to /usr/share/keyrings. Either host works: the files are found in both, and fed to pacman-key
# through its own directory (see _POPULATE_FROM).
KEYRING_DIRS = (Path("/usr/share/pacman/keyrings"), Path("/usr/share/keyrings"))
_LOG = logging.getLogger("archami.distro.keyring")
ARCH_KEYRING = "archlinux"
# A keyring package trusted by its checksum when the host's keyring cannot verify the mirror's (a stale
# host keyring, or a private mirror signed by keys of its own): `sha256:<hex>` of the package file.
KEYRING_PIN_ENV = "ARCHAMI_ARCH_KEYRING"


def keyring_files(name: str = ARCH_KEYRING, directories: Sequence[Path] = KEYRING_DIRS) -> list[Path]:
    """The files `pacman-key --populate NAME` reads; missing ones mean the keyring package isn't installed."""
    for directory in directories:
        main = directory / f"{name}.gpg"
        if main.is_file():
            return [p for p in (main, directory / f"{name}-trusted", directory / f"{name}-revoked") if p.is_file()]
    how = "apt-get install archlinux-keyring" if name == ARCH_KEYRING else f"copy {name}'s keyring files there"
    raise ArchamiError(
        f"{directories[-1] / (name + '.gpg')} not found: install the {name} keyring "
        f"(Debian/Ubuntu: {how}; Arch: pacman -S {name}-keyring)"
    )


def pacman_key_import_dir() -> Path:
    """The directory the host's pacman-key populates from (read from the script: distributions patch it)."""
    script = shutil.which("pacman-key")
    if script is not None:
        found = re.search(r"KEYRING_IMPORT_DIR=['\"]?([^'\"\s]+)", Path(script).read_text(errors="replace"))
        if found:
            return Path(found.group(1))
    return KEYRING_DIRS[0]


def expired_keys(key_file: Path) -> tuple[int, int]:
    """(expired, total) primary keys in a keyring file: why a host keyring can no longer verify packages."""
    with tempfile.TemporaryDirectory(prefix="archami-gpg-") as home:
        listing = run(["gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys", str(key_file)],
                      _LOG, capture=True, what=f"reading {key_file}")
    validity = [line.split(":")[1] for line in listing.splitlines() if line.startswith("pub:")]
    return sum(v == "e" for v in validity), len(validity)


def key_fingerprints(key_file: Path) -> list[str]:
    """Primary-key fingerprints in an (armoured or binary) public key file, read without importing it."""
    with tempfile.TemporaryDirectory(prefix="archami-gpg-") as home:
        listing = run(["gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys", str(key_file)],
                      _LOG, capture=True, what=f"reading the OpenPGP key {key_file}")
    fingerprints: list[str] = []
    expect_fpr = False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            expect_fpr = True
        elif fields[0] == "fpr" and expect_fpr:
            fingerprints.append(fields[9])
            expect_fpr = False
    if not fingerprints:
        raise ArchamiError(f"{key_file}: contains no public key")
    return fingerprints


def _populated_cache_key(keyrings: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for name in keyrings:
        for path in keyring_files(name):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _populate(gpg_dir: Path, keyrings: Sequence[str], log: logging.Logger) -> None:
    gpg_dir.mkdir(parents=True, exist_ok=True)
    gpg_dir.chmod(0o700)
    with reachable_home(gpg_dir) as home:
        run(["pacman-key", "--gpgdir", str(home), "--init"], log, what="pacman-key --init")
    for name in keyrings:
        populate_from_dir(gpg_dir, keyring_files(name)[0].parent, name, log)


def trust_key(gpg_dir: Path, key_file: Path, log: logging.Logger) -> list[str]:
    """Add a repository's public key to the keyring and locally sign it (so pacman trusts it)."""
    fingerprints = key_fingerprints(key_file)
    with reachable_home(gpg_dir) as home:
        run(["pacman-key", "--gpgdir", str(home), "--add", str(key_file)], log, what="pacman-key --add")
        run(["pacman-key", "--gpgdir", str(home), "--lsign-key", *fingerprints], log, what="pacman-key --lsign-key")
    return fingerprints


def prepare_keyring(
    gpg_dir: Path,
    log: logging.Logger,
    *,
    keyrings: Sequence[str] = (ARCH_KEYRING,),
    trusted_keys: Sequence[Path] = (),
    cache_dir: Path | None = None,
) -> None:
    """Make gpg_dir a pacman keyring: fresh master key, the distro keyrings, and each trusted key lsigned."""
    if gpg_dir.exists():
        shutil.rmtree(gpg_dir)
    if cache_dir is not None:
        cached = cache_dir / f"keyring-{'-'.join(keyrings) or 'empty'}-{_populated_cache_key(keyrings)}"
        if not cached.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".keyring-", dir=cache_dir))
            try:
                _populate(staging / "gnupg", keyrings, log)
                stop_agent(staging / "gnupg")
                try:
                    (staging / "gnupg").rename(cached)
                except OSError:
                    if not cached.is_dir():  # else a concurrent build populated it first: use theirs
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            log.info("reusing populated keyring %s", cached)
        # gpg's sockets are not copyable and would be stale anyway.
        shutil.copytree(cached, gpg_dir, ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*"))
    else:
        _populate(gpg_dir, keyrings, log)
    make_offline(gpg_dir)
    for key_file in trusted_keys:
        trust_key(gpg_dir, key_file, log)


def make_offline(gpg_dir: Path) -> None:
    """Forbid key look-ups on the network: a package signed by an unknown key must fail the build, not make
    pacman fetch that key from a keyserver or WKD (which it tries under --noconfirm). Without dirmngr gpg
    cannot even resolve a keyserver's name (checked with strace: no connect() but AF_UNIX)."""
    with (gpg_dir / "gpg.conf").open("a") as conf:
        conf.write(
            "# archami: never fetch keys during a build\n"
            "auto-key-locate local\nno-auto-key-retrieve\ndisable-dirmngr\n"
        )
    (gpg_dir / "dirmngr.conf").write_text("# archami: no network for this keyring\ndisable-http\ndisable-ldap\n")


# Run the real `pacman-key --populate` against keyring files from any directory: in a private mount
# namespace, bind-mount them over the directory the host's pacman-key reads ($1 = files, $2 = its directory).
_POPULATE_FROM = r"""
set -eu
mkdir -p "$2"
mount --bind "$1" "$2"
shift 2
exec "$@"
"""


def populate_from_dir(gpg_dir: Path, files: Path, keyring: str, log: logging.Logger) -> None:
    """`pacman-key --populate keyring` from the keyring files in `files`."""
    target = pacman_key_import_dir()
    with reachable_home(gpg_dir) as home:
        command = ["pacman-key", "--gpgdir", str(home), "--populate", keyring]
        if files == target:
            run(command, log, what=f"pacman-key --populate {keyring}")
            return
        run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
             "sh", "-c", _POPULATE_FROM, "archami-populate", str(files), str(target), *command],
            log, what=f"pacman-key --populate {keyring} from {files}",
        )


def populate_from_package(gpg_dir: Path, package: Path, keyring: str, log: logging.Logger) -> None:
    """Populate `keyring` from the files inside a keyring package (e.g. a newer archlinux-keyring from the
    mirror than the host's, which may lack the keys of recently added packagers)."""
    with tempfile.TemporaryDirectory(prefix="archami-keyring-") as tmp:
        run(["bsdtar", "-xf", str(package), "-C", tmp, "usr/share/pacman/keyrings"], log, what="bsdtar")
        files = Path(tmp) / "usr/share/pacman/keyrings"
        if not (files / f"{keyring}.gpg").is_file():
            raise ArchamiError(f"{package.name} holds no {keyring}.gpg keyring")
        populate_from_dir(gpg_dir, files, keyring, log)


def pinned_sha256(environ: Mapping[str, str]) -> str | None:
    """The keyring package checksum pinned in $ARCHAMI_ARCH_KEYRING (`sha256:<64 hex>`), if any."""
    value = environ.get(KEYRING_PIN_ENV, "").strip()
    if not value:
        return None
    found = re.fullmatch(r"sha256:([0-9a-f]{64})", value)
    if not found:
        raise ArchamiError(f"${KEYRING_PIN_ENV} must be sha256:<64 lower-case hex digits>, not {value!r}")
    return found.group(1)


def stop_agent(gpg_dir: Path) -> None:
    """pacman-key's gpg may leave a gpg-agent running on the keyring: stop it before the dir is removed."""
    if shutil.which("gpgconf") and gpg_dir.is_dir():
        with reachable_home(gpg_dir) as home:
            run(["gpgconf", "--homedir", str(home), "--kill", "all"], _LOG, check=False)
