"""Debian 13 (trixie) binary packages, fetched once into a cache keyed by what was asked for.

mmdebstrap's `extract` variant resolves the dependency closure of the listed packages with apt (the
host's configured defaults: no mirror is named here) and downloads it; an extract hook syncs apt's
archive directory out into the cache before anything is cleaned. Nothing is installed and no
maintainer script runs, on the host or anywhere else.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SUITE = "trixie"
DEB_ARCH = "amd64"

# What the shaped repository is made of (Debian names); apt adds the libraries they need.
DEBIAN_PACKAGES = (
    "libc6", "libc-bin", "libgcc-s1", "libstdc++6", "bash", "coreutils", "file", "findutils", "gawk", "grep",
    "procps", "sed", "tar", "gettext-base", "pciutils", "psmisc", "passwd", "login", "util-linux", "mount",
    "bsdutils", "util-linux-extra", "fdisk", "bzip2", "gzip", "xz-utils", "pacman-package-manager", "systemd",
    "systemd-sysv", "systemd-resolved", "systemd-timesyncd", "udev", "iputils-ping", "iproute2",
    "linux-image-cloud-amd64", "dracut", "kmod", "openssh-server", "openssh-client", "sudo", "python3",
    "e2fsprogs", "grub-pc-bin", "grub-efi-amd64-bin", "grub-common", "rng-tools5", "pinentry-curses", "gpg",
    "gpg-agent", "dirmngr", "gpgconf", "gpgv", "dbus", "ca-certificates", "tzdata", "zstd", "libarchive-tools",
    "curl", "diffutils", "binutils", "busybox", "netbase", "debianutils", "less", "libpam-runtime", "cpio",
)  # fmt: skip


# Fetched without their dependencies: Arch's pacman ships libmakepkg (pacman-key sources its
# parseopts.sh and message.sh), Debian's is the separate makepkg package, whose build tool chain
# (perl, texinfo, fakeroot...) Arch's pacman does not depend on.
WITHOUT_DEPENDENCIES = ("makepkg",)


def default_cache() -> Path:
    return Path(os.environ.get("ARCHAMI_SHAPED_CACHE", "/var/cache/archami/archshaped"))


@dataclass(frozen=True)
class Deb:
    """One downloaded .deb and the control fields the conversion reads."""

    path: Path
    name: str
    version: str
    architecture: str
    source: str
    depends: list[list[str]] = field(default_factory=list)  # AND of ORs, names only
    provides: list[str] = field(default_factory=list)
    conffiles: list[str] = field(default_factory=list)
    description: str = ""


def cache_key(packages: tuple[str, ...] = DEBIAN_PACKAGES) -> str:
    inputs = {"suite": SUITE, "arch": DEB_ARCH, "packages": sorted(packages), "tool": "mmdebstrap-extract",
              "without_dependencies": WITHOUT_DEPENDENCIES}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def fetch(cache: Path | None = None, packages: tuple[str, ...] = DEBIAN_PACKAGES) -> Path:
    """The directory of .debs for `packages` (downloaded on first use; later calls reuse it)."""
    target = (cache or default_cache()) / f"debs-{SUITE}-{DEB_ARCH}-{cache_key(packages)}"
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".debs-", dir=target.parent))
    try:
        debs = staging / "debs"
        debs.mkdir()
        subprocess.run(
            [
                # mmdebstrap's root mode mounts in the chroot: a private mount namespace drops those
                # mounts with the process, however it ends.
                "unshare", "--mount", "--propagation", "private", "--fork", "--kill-child",
                "mmdebstrap", "--mode=root", "--variant=extract", f"--architectures={DEB_ARCH}",
                f"--include={','.join(packages)}",
                "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
                # apt-get download: one package, no dependencies, from the same sources as the rest.
                "--extract-hook=cd \"$1\"/var/cache/apt/archives && "
                f"APT_CONFIG=$MMDEBSTRAP_APT_CONFIG apt-get -q download {' '.join(WITHOUT_DEPENDENCIES)}",
                f"--extract-hook=sync-out /var/cache/apt/archives {debs}",
                SUITE, str(staging / "root"),
            ],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        shutil.rmtree(staging / "root")
        shutil.rmtree(debs / "partial", ignore_errors=True)
        (debs / "lock").unlink(missing_ok=True)
        (debs / ".complete").write_text(f"{len(list(debs.glob('*.deb')))} packages\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(debs, target)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"mmdebstrap could not fetch {SUITE} packages: {exc.stderr[-2000:]}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _names(field_text: str) -> list[list[str]]:
    """A Depends-style field as AND-of-OR package names (versions and architecture qualifiers dropped)."""
    groups = []
    for group in field_text.split(","):
        names = [re.split(r"[\s(:]", alt.strip(), maxsplit=1)[0] for alt in group.split("|")]
        names = [n for n in names if n]
        if names:
            groups.append(names)
    return groups


def read_deb(path: Path) -> Deb:
    fields = ("Package", "Version", "Architecture", "Source", "Pre-Depends", "Depends", "Provides", "Description")
    out = subprocess.run(["dpkg-deb", "-f", str(path), *fields], check=True, capture_output=True, text=True).stdout
    values: dict[str, str] = {}
    key = ""
    for line in out.splitlines():
        if line[:1].isspace():
            continue  # long description
        key, _, value = line.partition(":")
        values[key] = value.strip()
    conffiles = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(path)], check=True, capture_output=True
    ).stdout
    return Deb(
        path=path,
        name=values["Package"],
        version=values["Version"],
        architecture=values["Architecture"],
        source=values.get("Source", values["Package"]).split()[0],
        depends=_names(values.get("Pre-Depends", "")) + _names(values.get("Depends", "")),
        provides=[alt[0] for alt in _names(values.get("Provides", ""))],
        conffiles=_conffiles(conffiles),
        description=values.get("Description", ""),
    )


def _conffiles(ctrl_tar: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(ctrl_tar)) as tar:
        for member in tar:
            if member.name.removeprefix("./") == "conffiles":
                data = tar.extractfile(member)
                assert data is not None
                lines = data.read().decode().split("\n")
                kept = [line for line in lines if line.strip() and "remove-on-upgrade" not in line]
                return [line.split()[-1].lstrip("/") for line in kept]
    return []


def read_all(directory: Path) -> dict[str, Deb]:
    debs = [read_deb(p) for p in sorted(directory.glob("*.deb"))]
    return {d.name: d for d in debs}
