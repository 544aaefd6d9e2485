"""Debian packages -> Arch packages: group, unpack in Arch's layout, add Arch's files, write .pkg.tar.zst.

Each Arch package is staged in a directory and packed by archami's own `archami.pacman.archive` (the
.PKGINFO and .MTREE makepkg writes). Debian maintainer scripts never run; what they would do comes from
alpm hooks (extras.py), from the files written here, or from the `filesystem` package.
"""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from archami.pacman.archive import build_package
from archami.pacman.pkginfo import PkgInfo, full_version

from . import catalog, extras
from .debs import Deb
from .layout import unpack_into

ARCH = "x86_64"
SOURCE_DATE_EPOCH = 1767225600  # 2026-01-01: every package file is reproducible
PACKAGER = "archami shaped test repository <archshaped@archami.invalid>"
OWN_VERSIONS = {
    "base": "3-2", "filesystem": "2025.05.03-1", "licenses": "20240728-1", "pacman-mirrorlist": "20260101-1",
    "mkinitcpio": "41-1", "archlinux-keyring": "20260420-1",
}  # fmt: skip
KEYRING_DIR = "usr/share/pacman/keyrings"


class ConversionError(Exception):
    pass


@dataclass
class Plan:
    """One Arch package to build: its Debian parts (none for our own) and its metadata."""

    name: str
    debs: list[Deb] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)
    version: str = ""
    description: str = ""


def arch_version(debian_version: str, pkgrel: str = "1") -> str:
    epoch, _, rest = debian_version.rpartition(":") if ":" in debian_version else ("", "", debian_version)
    pkgver = re.sub(r"[^A-Za-z0-9._+]", "_", rest.replace("-", "."))
    return full_version(pkgver, pkgrel, epoch or None)


def plan(debs: dict[str, Deb], pkgrel: str = "1") -> dict[str, Plan]:
    """Group the Debian closure into Arch packages and translate dependencies to Arch names.

    `pkgrel` names the conversion: package caches key by file name, so a changed conversion of the same
    Debian version must get a new one."""
    wanted = {name: deb for name, deb in debs.items() if name not in catalog.DEBIAN_ONLY}
    owner = {name: catalog.arch_name(name, deb.source) for name, deb in wanted.items()}
    for name, deb in wanted.items():
        for virtual in deb.provides:
            owner.setdefault(virtual, owner[name])
    plans: dict[str, Plan] = {name: Plan(name) for name in catalog.OWN_PACKAGES}
    for name, deb in sorted(wanted.items()):
        plans.setdefault(owner[name], Plan(owner[name])).debs.append(deb)
    for package in plans.values():
        meta = catalog.ARCH_META.get(package.name, catalog.ArchMeta())
        translated: list[str] = []
        dropped = catalog.DROPPED_DEPENDS.get(package.name, set())
        if not meta.only_declared:
            for deb in package.debs:
                for alternatives in deb.depends:
                    found = next((owner[a] for a in alternatives if a in owner), None)
                    if found is not None and found != package.name and found not in dropped:
                        translated.append(found)
        package.depends = list(dict.fromkeys([*meta.depends, *translated]))
        primary = _primary(package)
        own = OWN_VERSIONS.get(package.name)
        if own is not None:
            package.version = f"{own.rsplit('-', 1)[0]}-{pkgrel}"
        else:
            package.version = arch_version(primary.version if primary else "1-1", pkgrel)
        package.description = meta.description or (primary.description if primary else package.name)
    provided = {p for name in plans for p in [name, *catalog.ARCH_META.get(name, catalog.ArchMeta()).provides]}
    missing = sorted({(p.name, d) for p in plans.values() for d in p.depends if d not in provided})
    if missing:
        raise ConversionError(f"dependencies no package provides: {missing}")
    return plans


def _primary(package: Plan) -> Deb | None:
    for deb in package.debs:
        if deb.name in (package.name, deb.source):
            return deb
    return package.debs[0] if package.debs else None


def write_files(root: Path, files: extras.Files) -> None:
    for rel, spec in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, str):
            if path.is_symlink() or path.exists():
                path.unlink()
            path.symlink_to(spec.removeprefix("->"))
            continue
        content, mode = spec
        if mode & stat.S_IFDIR:
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(stat.S_IMODE(mode))
            continue
        if path.is_symlink():
            path.unlink()
        path.write_text(content)
        path.chmod(mode)


def _filesystem_paths() -> set[str]:
    files = extras.filesystem_files().items()
    return {rel for rel, spec in files if not (isinstance(spec, tuple) and spec[1] & stat.S_IFDIR)}


def stage(package: Plan, root: Path, key_files: dict[str, bytes]) -> tuple[list[str], str | None]:
    """Fill `root` with the package's files; returns (backup files, install scriptlet)."""
    backup: list[str] = []
    install: str | None = None
    for deb in package.debs:
        unpack_into(deb.path, root)
        backup += [c for c in deb.conffiles]
    for old, new in catalog.UNIT_RENAMES.items():
        if (root / old).exists():
            (root / old).rename(root / new)
    for config, template in catalog.CONFIG_FROM_TEMPLATE.get(package.name, {}).items():
        shutil.copy2(root / template, root / config)
        backup.append(config)
    for link, target in catalog.ALTERNATIVES.get(package.name, {}).items():
        if not (root / link).exists():
            write_files(root, {link: "->" + target})
    write_files(root, extras.PACKAGE_FILES.get(package.name, {}))
    if package.name == "filesystem":
        write_files(root, extras.filesystem_files())
        backup += extras.FILESYSTEM_BACKUP
    else:
        for rel in _filesystem_paths():  # the filesystem package owns these
            if (root / rel).is_file() or (root / rel).is_symlink():
                (root / rel).unlink()
    if package.name == "mkinitcpio":
        write_files(root, extras.mkinitcpio_files())
    elif package.name == "linux":
        _shape_kernel(root)
    elif package.name == "pacman":
        _patch_pacman_key(root)
    elif package.name == "ca-certificates":
        certs = sorted(p.relative_to(root / "usr/share/ca-certificates").as_posix()
                       for p in (root / "usr/share/ca-certificates").rglob("*.crt"))
        write_files(root, {"etc/ca-certificates.conf": ("\n".join(certs) + "\n", 0o644)})
        backup.append("etc/ca-certificates.conf")
    elif package.name == "licenses":
        write_files(root, {"usr/share/licenses/README": ("Placeholder for Arch's licenses package.\n", 0o644)})
    elif package.name == "pacman-mirrorlist":
        write_files(root, {"etc/pacman.d/mirrorlist": ("## Arch Linux repository mirrorlist\n#Server = \n", 0o644)})
    elif package.name == "archlinux-keyring":
        for name, data in key_files.items():
            (root / KEYRING_DIR).mkdir(parents=True, exist_ok=True)
            (root / KEYRING_DIR / name).write_bytes(data)
        install = extras.keyring_install_script()
    meta = catalog.ARCH_META.get(package.name, catalog.ArchMeta())
    backup = sorted({b for b in [*backup, *meta.backup] if (root / b).is_file() and not (root / b).is_symlink()})
    return backup, install


def _shape_kernel(root: Path) -> None:
    """Arch's kernel layout: the image at usr/lib/modules/<ver>/vmlinuz with a `pkgbase` file, nothing in /boot."""
    images = sorted((root / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        raise ConversionError(f"expected one kernel image in the Debian kernel package, found {images}")
    kver = images[0].name.removeprefix("vmlinuz-")
    modules = root / "usr/lib/modules" / kver
    if not modules.is_dir():
        raise ConversionError(f"kernel {kver}: no {modules}")
    images[0].rename(modules / "vmlinuz")
    (modules / "pkgbase").write_text("linux\n")
    shutil.rmtree(root / "boot")


def _patch_pacman_key(root: Path) -> None:
    """Debian's pacman-key reads keyrings from /usr/share/keyrings; Arch's from /usr/share/pacman/keyrings."""
    script = root / "usr/bin/pacman-key"
    text = script.read_text()
    if "/usr/share/keyrings" not in text:
        raise ConversionError("pacman-key: Debian's keyring path not found (the patch needs updating)")
    script.write_text(text.replace("/usr/share/keyrings", "/" + KEYRING_DIR))


def package_info(package: Plan, backup: list[str]) -> PkgInfo:
    meta = catalog.ARCH_META.get(package.name, catalog.ArchMeta())
    all_arch = package.debs and all(d.architecture == "all" for d in package.debs)
    return PkgInfo(
        pkgname=package.name,
        pkgver=package.version,
        arch="any" if all_arch or (not package.debs and package.name != "mkinitcpio") else ARCH,
        pkgdesc=package.description,
        packager=PACKAGER,
        license=["custom"],
        provides=list(meta.provides),
        conflicts=list(meta.conflicts),
        depends=list(package.depends),
        backup=backup,
    )


def build_one(package: Plan, work: Path, out: Path, key_files: dict[str, bytes]) -> Path:
    root = work / package.name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    try:
        backup, install = stage(package, root, key_files)
        return build_package(
            root, package_info(package, backup), out, source_date_epoch=SOURCE_DATE_EPOCH, install_script=install
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def file_conflicts(packages: Iterable[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """Paths (not directories) that more than one package ships: pacman would refuse the second."""
    owners: dict[str, list[str]] = {}
    for name, files in packages:
        for path in files:
            if not path.endswith("/"):
                owners.setdefault(path, []).append(name)
    return {path: names for path, names in owners.items() if len(names) > 1}
