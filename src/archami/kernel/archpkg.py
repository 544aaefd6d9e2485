"""The Arch side: `linux-ec2` and `linux-ec2-headers` pacman packages, repacked from the very files
`make bindeb-pkg` put in its `.deb`s (one compile, two packagings), in Arch's kernel layout:

    /usr/lib/modules/<release>/vmlinuz     the kernel image; mkinitcpio's install hook copies it to
    /usr/lib/modules/<release>/pkgbase     /boot/vmlinuz-<pkgbase> and makes the preset from pkgbase
    /usr/lib/modules/<release>/kernel/...  modules (depmod's indexes are made on install by the hook,
                                           so `pacman -Qkk` never sees them as altered files)
    /usr/lib/modules/<release>/build/      headers and scripts for out-of-tree modules (-headers)
    /usr/src/<pkgbase> -> ../lib/modules/<release>/build
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from archami import __version__
from archami.errors import ArchamiError
from archami.kernel.fragment import NOT_SET
from archami.pacman.archive import build_package
from archami.pacman.pkginfo import BuildInfo, PkgInfo

ARCH = "x86_64"
# Written by depmod on the instance (pacman's depmod hook); shipping them would make them "altered".
DEPMOD_OUTPUTS = frozenset({
    "modules.alias", "modules.alias.bin", "modules.builtin.alias.bin", "modules.builtin.bin", "modules.dep",
    "modules.dep.bin", "modules.devname", "modules.softdep", "modules.symbols", "modules.symbols.bin",
    "modules.weakdep",
})
# Virtual packages Arch's kernels provide when they carry the module (out-of-tree packages depend on them).
MODULE_PROVIDES = {"CONFIG_WIREGUARD": "WIREGUARD-MODULE", "CONFIG_SMB_SERVER": "KSMBD-MODULE"}


@dataclass(frozen=True)
class ArchKernel:
    pkgbase: str
    release: str  # uname -r
    pkgver: str  # e.g. 6.1.192
    pkgrel: int
    packager: str
    epoch: int
    inputs_digest: str  # recorded as the .BUILDINFO's build-recipe digest

    @property
    def version(self) -> str:
        return f"{self.pkgver}-{self.pkgrel}"

    def _buildinfo(self, info: PkgInfo) -> BuildInfo:
        return BuildInfo(
            pkgname=info.pkgname, pkgbase=self.pkgbase, pkgver=info.pkgver, pkgarch=ARCH,
            pkgbuild_sha256sum=self.inputs_digest, packager=self.packager, builddate=self.epoch,
            buildtoolver=__version__,
        )

    def package_kernel(self, image_root: Path, config: dict[str, str], staging: Path, out_dir: Path) -> Path:
        """linux-ec2 from the unpacked linux-image .deb (image_root)."""
        modules = _modules_dir(image_root, self.release)
        vmlinuz = image_root / "boot" / f"vmlinuz-{self.release}"
        if not vmlinuz.is_file():
            raise ArchamiError(f"{vmlinuz.name} is not in the kernel package")
        target = staging / "usr/lib/modules" / self.release
        target.parent.mkdir(parents=True)
        skip = lambda d, names: _skip_in_modules(Path(d) == modules, names)  # noqa: E731
        shutil.copytree(modules, target, symlinks=True, ignore=skip)
        shutil.copyfile(vmlinuz, target / "vmlinuz")
        (target / "pkgbase").write_text(f"{self.pkgbase}\n")
        provides = [name for option, name in MODULE_PROVIDES.items() if config.get(option, NOT_SET) != NOT_SET]
        info = PkgInfo(
            pkgname=self.pkgbase, pkgbase=self.pkgbase, pkgver=self.version, arch=ARCH,
            pkgdesc=f"The Linux {self.pkgver} kernel and modules, configured for Amazon EC2 (archami)",
            packager=self.packager, license=["GPL-2.0-only"], depends=["coreutils", "kmod", "initramfs"],
            provides=provides,
        )
        return build_package(staging, info, out_dir, source_date_epoch=self.epoch, buildinfo=self._buildinfo(info))

    def package_headers(self, headers_root: Path, staging: Path, out_dir: Path) -> Path:
        """linux-ec2-headers from the unpacked linux-headers .deb (headers_root)."""
        source = headers_root / "usr/src" / f"linux-headers-{self.release}"
        if not (source / "Makefile").is_file():
            raise ArchamiError(f"linux-headers-{self.release} has no usr/src/linux-headers-{self.release}/Makefile")
        build = staging / "usr/lib/modules" / self.release / "build"
        build.parent.mkdir(parents=True)
        shutil.copytree(source, build, symlinks=True)
        (staging / "usr/src").mkdir(parents=True)
        (staging / "usr/src" / self.pkgbase).symlink_to(f"../lib/modules/{self.release}/build")
        name = f"{self.pkgbase}-headers"
        info = PkgInfo(
            pkgname=name, pkgbase=self.pkgbase, pkgver=self.version, arch=ARCH,
            pkgdesc=f"Headers and scripts for building modules for the {self.pkgbase} kernel",
            packager=self.packager, license=["GPL-2.0-only"],
        )
        return build_package(staging, info, out_dir, source_date_epoch=self.epoch, buildinfo=self._buildinfo(info))


def _modules_dir(root: Path, release: str) -> Path:
    for base in ("usr/lib/modules", "lib/modules"):
        if (root / base / release / "modules.order").is_file():
            return root / base / release
    raise ArchamiError(f"no modules for {release} in the kernel package")


def _skip_in_modules(top: bool, names: list[str]) -> set[str]:
    # build/source are links into the build machine's tree; the headers package provides build/.
    return {n for n in names if n in DEPMOD_OUTPUTS or n in ("build", "source")} if top else set()
