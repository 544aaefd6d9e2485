"""The Debian side of a kernel build: reading the `.deb`s `make bindeb-pkg` wrote, and the two small
metapackages (`linux-ec2`, `linux-ec2-headers`) that let a definition name the kernel by a stable name,
the way Debian's own `linux-image-cloud-amd64` does.

The metapackages are built with `dpkg-deb`, the tool bindeb-pkg itself uses; the kernel stage needs it
anyway, and a hand-written `ar` archive would only be a second, less tested way to make the same file.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from debian.debfile import DebError, DebFile

from archami.errors import ArchamiError
from archami.runner import run

DEB_ARCH = "amd64"


@dataclass(frozen=True)
class DebInfo:
    path: Path
    package: str
    version: str
    architecture: str
    control: dict[str, str]


def read_deb(path: Path) -> DebInfo:
    try:
        with DebFile(str(path)) as deb:
            control = {str(k): str(v) for k, v in deb.debcontrol().items()}
    except (DebError, OSError, KeyError) as exc:
        raise ArchamiError(f"{path}: not a readable Debian package ({exc})") from None
    try:
        return DebInfo(path, control["Package"], control["Version"], control["Architecture"], control)
    except KeyError as exc:
        raise ArchamiError(f"{path}: control file lacks {exc}") from None


def extract_deb(path: Path, target: Path) -> None:
    """Unpack a package's files (not its maintainer scripts) into target, as dpkg would lay them out."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with DebFile(str(path)) as deb:
            tar: tarfile.TarFile = deb.data.tgz()
            # "tar" filter: no absolute names, nothing outside target, no setuid bits from an archive.
            tar.extractall(target, filter="tar")
    except (DebError, tarfile.TarError, OSError) as exc:
        raise ArchamiError(f"{path}: cannot unpack ({exc})") from None


def build_metapackage(
    name: str,
    version: str,
    depends: list[str],
    description: str,
    out_dir: Path,
    *,
    epoch: int,
    log: logging.Logger,
) -> Path:
    """An empty package whose Depends pull in the versioned kernel packages."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}_{version}_{DEB_ARCH}.deb"
    summary, _, body = description.partition("\n")
    control = (
        f"Package: {name}\nVersion: {version}\nArchitecture: {DEB_ARCH}\n"
        f"Maintainer: archami <kernel@archami.invalid>\nSection: kernel\nPriority: optional\n"
        f"Depends: {', '.join(depends)}\nDescription: {summary}\n"
        + "".join(f" {line or '.'}\n" for line in body.splitlines())
    )
    with tempfile.TemporaryDirectory(prefix=f"archami-{name}-") as tmp:
        root = Path(tmp) / "pkg"
        doc = root / "usr/share/doc" / name
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(f"{name}: a metapackage made by archami; the kernel is GPL-2.0-only.\n")
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN/control").write_text(control)
        for path in [root, *root.rglob("*")]:
            os.utime(path, (epoch, epoch), follow_symlinks=False)
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = {"SOURCE_DATE_EPOCH": str(epoch)}
        run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, target], log, env=env)
    return target
