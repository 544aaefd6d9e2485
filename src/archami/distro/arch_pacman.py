"""Running real pacman against an image root, and reading the root's local package database.

pacman runs through archami's runner with the root's API filesystems mounted in a private namespace
(`run_with_api_mounts`): install scriptlets and hooks chroot into the root and expect them, and the mounts
vanish with the namespace on success, error, Ctrl-C or kill alike.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from archami.artifacts import PackageInfo
from archami.errors import ArchamiError
from archami.runner import CommandError, run_with_api_mounts
from archami.runner import run_in_root as _run_in_root

# pacman exits 0 when an install scriptlet or hook fails (e.g. no /bin/sh in the root); these lines in
# its output are the only sign of it.
_FAILURE_PATTERNS = (
    re.compile(r"^error: command failed to execute correctly", re.M),
    re.compile(r"^error: call to execv failed", re.M),
    re.compile(r"^error: .*scriptlet", re.M),
    re.compile(r"^error: failed to run transaction hooks", re.M),
    re.compile(r"^error: hook .* failed", re.M),
)


@dataclass(frozen=True)
class PacmanPaths:
    """Where the build's pacman keeps its state: all archami's own, none of them the host's."""

    root: Path
    config: Path
    gpg_dir: Path
    cache_dir: Path
    log_file: Path

    @property
    def db_path(self) -> Path:
        # The image's own database, so the instance's pacman knows what is installed.
        return self.root / "var/lib/pacman"

    def options(self) -> list[str]:
        return [
            "--root", str(self.root),
            "--config", str(self.config),
            "--dbpath", str(self.db_path),
            "--gpgdir", str(self.gpg_dir),
            "--cachedir", str(self.cache_dir),
            "--logfile", str(self.log_file),
            "--hookdir", str(self.root / "etc/pacman.d/hooks"),
            "--noconfirm",
            "--noprogressbar",
            "--color", "never",
        ]


def prepare_root(root: Path) -> None:
    """The directories pacman and the API mounts need in an empty root (as pacstrap makes them)."""
    for sub, mode in (
        ("var/lib/pacman", 0o755), ("var/cache/pacman/pkg", 0o755), ("var/log", 0o755), ("etc/pacman.d", 0o755),
        ("dev", 0o755), ("run", 0o755), ("tmp", 0o1777), ("proc", 0o555), ("sys", 0o555),
    ):
        path = root / sub
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)


def scriptlet_failures(output: str) -> list[str]:
    """Lines of pacman output reporting a failed install scriptlet or hook (pacman still exits 0)."""
    found = []
    for line in output.splitlines():
        if any(p.match(line) for p in _FAILURE_PATTERNS):
            found.append(line.strip())
    return found


def run_pacman(paths: PacmanPaths, args: Sequence[str], log: logging.Logger, *, what: str) -> str:
    """Run `pacman <options> <args>` with the API filesystems mounted in the root; fail on scriptlet errors."""
    prepare_root(paths.root)
    output = run_with_api_mounts(paths.root, ["pacman", *paths.options(), *args], log, what=what)
    failures = scriptlet_failures(output)
    if failures:
        raise ArchamiError(f"{what}: pacman reported failures although it exited 0: {'; '.join(failures[:3])}")
    return output


def run_in_root(
    root: Path, cmd: Sequence[str], log: logging.Logger, *, what: str, env: Mapping[str, str] | None = None
) -> str:
    """Run a command chrooted into the image root, with the API filesystems mounted (e.g. mkinitcpio)."""
    prepare_root(root)
    return _run_in_root(root, cmd, log, what=what, env=env)


def install(paths: PacmanPaths, packages: Sequence[str], log: logging.Logger, *, refresh: bool = True) -> None:
    """`pacman -S[y] --needed` the packages into the root, every signature checked by pacman.conf's SigLevel."""
    if not packages:
        raise ArchamiError("no packages to install")
    flags = "-Sy" if refresh else "-S"
    what = f"pacman {flags} {' '.join(packages)}"
    try:
        run_pacman(paths, [flags, "--needed", *packages], log, what=what)
    except CommandError as exc:
        # The package cache is shared between builds and keyed by file name: a repository rebuilt with another
        # key (archami's own `ec2`, same version) finds the old file there, which fails its new signature.
        # pacman deletes such a file (--noconfirm says yes), so one more try downloads the right one.
        if "is corrupted (invalid or corrupted package (PGP signature))" not in str(exc):
            raise
        log.warning("a cached package failed its signature (pacman removed it): downloading again")
        run_pacman(paths, [flags, "--needed", *packages], log, what=what)


def download(paths: PacmanPaths, package: str, log: logging.Logger) -> Path:
    """Download one package (signature checked) into the cache without installing it; return its file."""
    # -dd: this one package, not its dependency closure (archlinux-keyring depends on pacman, which on an
    # empty root would pull in, and print, half of the base system).
    run_pacman(paths, ["-Syw", "-dd", package], log, what=f"pacman -Syw {package}")
    # %l (the download URL) rather than %f (the file name): pacman 6.0 has no %f.
    output = run_pacman(paths, ["-Sp", "-dd", "--print-format", "%l", package], log, what=f"pacman -Sp {package}")
    names = [
        line.strip().rsplit("/", 1)[-1] for line in output.splitlines() if line.strip().endswith(_PACKAGE_SUFFIXES)
    ]
    if len(names) != 1 or not (paths.cache_dir / names[0]).is_file():
        raise ArchamiError(f"pacman -Syw {package}: downloaded file not found in {paths.cache_dir}: {output!r}")
    return paths.cache_dir / names[0]


_PACKAGE_SUFFIXES = (".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz", ".pkg.tar.bz2", ".pkg.tar")


def download_pinned(paths: PacmanPaths, package: str, sha256: str, log: logging.Logger) -> Path:
    """Fetch one package by the URL the mirror's database gives, trusted by its pinned checksum instead of a
    signature (for the keyring package when the host's keyring cannot verify it). Refused on a mismatch.

    A mirror that signs its databases signs them with the keys the host cannot verify either, so the
    database is read unchecked here (it only names the URL; the checksum is the trust) and then dropped:
    the install that follows downloads it again and checks it with the refreshed keyring."""
    unchecked = paths.config.with_name(paths.config.name + ".unchecked-db")
    unchecked.write_text(re.sub(r"^(\s*SigLevel\s*=.*)$", r"\1 DatabaseNever", paths.config.read_text(), flags=re.M))
    lookup = replace(paths, config=unchecked)
    try:
        run_pacman(lookup, ["-Sy"], log, what="pacman -Sy")
        urls = run_pacman(lookup, ["-Sp", "-dd", "--print-format", "%l", package], log, what=f"pacman -Sp {package}")
    finally:
        unchecked.unlink(missing_ok=True)
        for database in (p for p in (paths.db_path / "sync").glob("*") if p.is_file()):
            database.unlink()
    (url,) = [line.strip() for line in urls.splitlines() if line.strip().endswith(_PACKAGE_SUFFIXES)] or [""]
    if not url:
        raise ArchamiError(f"the mirror's database has no {package}")
    target = paths.cache_dir / url.rsplit("/", 1)[-1]
    digest = hashlib.sha256()
    tmp = target.with_name(f".{target.name}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as answer, tmp.open("wb") as out:
            while chunk := answer.read(1 << 16):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ArchamiError(
                f"{target.name} from the mirror has sha256 {digest.hexdigest()}, not the pinned {sha256}: refused"
            )
        tmp.replace(target)
    except OSError as exc:
        raise ArchamiError(f"cannot fetch {url}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: sha256 %s matches the pin", target.name, sha256)
    return target


def remove_installed(paths: PacmanPaths, packages: Sequence[str], log: logging.Logger) -> list[str]:
    """Remove those of `packages` that are installed (with their now unneeded dependencies); return them."""
    installed = {p.name for p in installed_packages(paths.root)}
    present = [p for p in packages if p in installed]
    if present:
        run_pacman(paths, ["-Rns", *present], log, what=f"pacman -Rns {' '.join(present)}")
    else:
        log.info("none of %s installed: nothing to remove", ", ".join(packages) or "()")
    return present


def _desc_fields(text: str) -> dict[str, list[str]]:
    """Parse a pacman `desc` file: `%NAME%` headers followed by value lines, blank-line separated."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("%") and line.endswith("%") and len(line) > 2:
            current = fields.setdefault(line[1:-1], [])
        elif not line:
            current = None
        elif current is not None:
            current.append(line)
    return fields


def installed_packages(root: Path) -> list[PackageInfo]:
    """Every package in the root's local database (var/lib/pacman/local/*/desc), sorted by name."""
    local = root / "var/lib/pacman/local"
    packages = []
    if local.is_dir():
        for desc in sorted(local.glob("*/desc")):
            fields = _desc_fields(desc.read_text(errors="replace"))
            if "NAME" in fields and "VERSION" in fields:
                arch = fields.get("ARCH", [""])[0]
                packages.append(PackageInfo(name=fields["NAME"][0], version=fields["VERSION"][0], architecture=arch))
    return sorted(packages, key=lambda p: p.name)
