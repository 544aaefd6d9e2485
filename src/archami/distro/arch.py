"""Arch Linux backend: a root filesystem made by real pacman, with archami's own keyring and database.

    bootstrap:   pacman.conf (archami's paths, SigLevel Required) -> keyring (archlinux + repo keys, lsigned)
                 -> refresh it from the mirror's archlinux-keyring -> pacman -Sy base KERNEL PACKAGES
                 -> pacman -Rns REMOVED (if installed)
    initramfs:   mkinitcpio.conf (definition modules, no autodetect) -> mkinitcpio -P in the root
    package manager: the instance's /etc/pacman.conf (ec2 repo first) and /etc/pacman.d/mirrorlist
    clean:       package cache, sync databases, keyring (/etc/pacman.d/gnupg: first boot makes it), logs
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from archami.artifacts import PackageInfo
from archami.config.schema import Repository
from archami.config.spec import ImageSpec
from archami.distro import arch_pacman
from archami.distro.arch_conf import (
    MIRROR_ENV,
    MKINITCPIO_DROP_IN,
    distro_repositories_for,
    instance_pacman_conf,
    mirror_env_for,
    mirrorlist,
    mirrors_for,
    mkinitcpio_conf,
    pacman_conf,
)
from archami.distro.arch_keyring import (
    KEYRING_PIN_ENV,
    expired_keys,
    keyring_files,
    pinned_sha256,
    populate_from_package,
    prepare_keyring,
    stop_agent,
)
from archami.distro.arch_pacman import PacmanPaths
from archami.distro.base import BuildContext, DistroBackend
from archami.distro.rules import ARCH
from archami.errors import ArchamiError
from archami.fsutil import empty_dir
from archami.runner import CommandError

__all__ = ["MIRROR_ENV", "ArchBackend", "mirrorlist", "mkinitcpio_conf", "pacman_conf"]

INSTANCE_MIRRORLIST = "/etc/pacman.d/mirrorlist"

# Arch Linux proper is x86_64 only; i686 is Arch Linux 32 and aarch64 Arch Linux ARM, each with its own
# signing keys (and mirrors: set them in the definition or $ARCHAMI_ARCH_MIRROR). The keyring's files must be
# in /usr/share/keyrings (Debian ships only archlinux's); the build says how when they are missing.
KEYRING_FOR_ARCHITECTURE = {"x86_64": "archlinux", "i686": "archlinux32", "aarch64": "archlinuxarm"}


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _key_path(key: str) -> Path:
    """A repository `key` path (made absolute, relative to its definition file, when it was loaded)."""
    path = Path(key)
    if not path.is_file():
        raise ArchamiError(
            f"repository key {key!r} not found (for archami's own ec2 repository `archami repo build` creates it)"
        )
    return path


class ArchBackend(DistroBackend):
    rules = ARCH

    def __init__(
        self,
        *,
        keyrings: tuple[str, ...] | None = None,
        extra_trusted_keys: tuple[Path, ...] = (),
        distro_repositories: tuple[str, ...] | None = None,
        refresh_keyring: bool = True,
    ) -> None:
        # keyrings: populated from /usr/share/keyrings (default: the architecture's distribution's, see
        # KEYRING_FOR_ARCHITECTURE); extra_trusted_keys: signing keys of a private mirror
        # of the distro repositories (added and lsigned like a definition repository's key);
        # distro_repositories: default the architecture's distribution's (Arch Linux ARM adds [alarm]).
        self.keyrings = keyrings
        self.extra_trusted_keys = extra_trusted_keys
        self.distro_repositories = distro_repositories
        # The host's archlinux-keyring (Debian's) can be years old and miss newer packagers' keys: first fetch
        # the mirror's archlinux-keyring (its signature checked with the host's keys) and populate from it.
        self.refresh_keyring = refresh_keyring

    # -- paths -------------------------------------------------------------------------------------------

    def paths(self, ctx: BuildContext) -> PacmanPaths:
        cache = ctx.cache / "arch" / ctx.spec.architecture / "pkg"
        return PacmanPaths(
            root=ctx.root,
            config=ctx.work / "pacman.conf",
            gpg_dir=ctx.work / "gnupg",
            cache_dir=cache,
            log_file=ctx.work / "pacman.log",
        )

    def repositories_for(self, spec: ImageSpec) -> tuple[str, ...]:
        return self.distro_repositories or distro_repositories_for(spec.architecture)

    def build_pacman_conf(self, ctx: BuildContext, paths: PacmanPaths) -> str:
        environment = {**os.environ, **ctx.env}
        return pacman_conf(
            architecture=ctx.spec.architecture,
            mirrors=mirrors_for(ctx.spec.mirrors, environment, ctx.spec.architecture),
            repositories=ctx.spec.repositories,
            distro_repositories=self.repositories_for(ctx.spec),
            cache_dir=paths.cache_dir,
            db_path=paths.db_path,
            gpg_dir=paths.gpg_dir,
            log_file=paths.log_file,
        )

    def keyrings_for(self, spec: ImageSpec) -> tuple[str, ...]:
        return self.keyrings if self.keyrings is not None else (KEYRING_FOR_ARCHITECTURE[spec.architecture],)

    def bootstrap_packages(self, spec: ImageSpec) -> list[str]:
        """The spec's packages plus what the EC2 build itself relies on in an Arch image."""
        needed = ["base", spec.kernel.package, "openssh"]
        if spec.architecture == "aarch64":
            # An x86_64 build host has no arm64-efi GRUB modules: the image's grub package brings them (and its
            # grub-mkimage runs in the root under qemu-user). Its keyring is not pacman's dependency there.
            needed += ["grub", f"{KEYRING_FOR_ARCHITECTURE['aarch64']}-keyring"]
        if spec.network.stack == "dhclient":
            needed.append("dhclient")
        needed.append("python" if spec.firstboot.agent == "archami" else "cloud-init")
        return [p for p in _unique([*needed, *spec.packages]) if p not in spec.removed]

    def cache_inputs(self, spec: ImageSpec) -> dict[str, object]:
        """What determines the bootstrapped root (the build's root cache hashes this).

        Arch is rolling: the same package list gives a different root tomorrow; the root cache reuses a root
        for a day at most (image/cache.py MAX_ROOT_AGE) and re-bootstrapping still reuses the package cache,
        downloading only what changed. Keys are digested so a changed key re-bootstraps.
        """
        mirrors = mirrors_for(spec.mirrors, architecture=spec.architecture)
        if not mirrors:  # the first thing a user must fix, so say it before anything else can fail
            variable = mirror_env_for(spec.architecture)
            raise ArchamiError(f"no Arch mirror configured: set {variable} or list `mirrors` in the definition")
        keys = [_key_path(r.key) for r in spec.repositories if r.key] + list(self.extra_trusted_keys)
        keyrings = [p for name in self.keyrings_for(spec) for p in keyring_files(name)]
        return {
            "tool": "pacman",
            "architecture": spec.architecture,
            "packages": self.bootstrap_packages(spec),
            "removed": sorted(spec.removed),
            "mirrors": mirrors,
            "repositories": [r.model_dump() for r in spec.repositories],
            "distro_repositories": list(self.repositories_for(spec)),
            "keys": {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in [*keyrings, *keys]},
            "keyring_pin": pinned_sha256(os.environ),
        }

    # -- DistroBackend -----------------------------------------------------------------------------------

    def bootstrap(self, ctx: BuildContext) -> None:
        paths = self.paths(ctx)
        ctx.work.mkdir(parents=True, exist_ok=True)
        paths.cache_dir.mkdir(parents=True, exist_ok=True)
        paths.config.write_text(self.build_pacman_conf(ctx, paths))
        ctx.log.info("pacman.conf for the build: %s", paths.config)

        trusted = [_key_path(r.key) for r in ctx.spec.repositories if r.key]
        prepare_keyring(
            paths.gpg_dir,
            ctx.log,
            keyrings=self.keyrings_for(ctx.spec),
            trusted_keys=[*trusted, *self.extra_trusted_keys],
            cache_dir=ctx.cache / "arch",
        )
        try:
            main_keyring = KEYRING_FOR_ARCHITECTURE[ctx.spec.architecture]
            if self.refresh_keyring and main_keyring in self.keyrings_for(ctx.spec):
                package = _mirror_keyring(paths, main_keyring, {**os.environ, **ctx.env}, ctx)
                populate_from_package(paths.gpg_dir, package, main_keyring, ctx.log)
            arch_pacman.install(paths, self.bootstrap_packages(ctx.spec), ctx.log)
            if ctx.spec.removed:
                removed = arch_pacman.remove_installed(paths, list(ctx.spec.removed), ctx.log)
                ctx.log.info("removed packages: %s", ", ".join(removed) or "none were installed")
        finally:
            stop_agent(paths.gpg_dir)

    def regenerate_initramfs(self, ctx: BuildContext) -> None:
        conf = ctx.root / MKINITCPIO_DROP_IN.lstrip("/")
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(mkinitcpio_conf(list(ctx.spec.kernel.initramfs_modules)))
        # -P: every installed kernel's preset; without autodetect each image holds the listed modules.
        # mkinitcpio honours SOURCE_DATE_EPOCH (file times in the image, reproducible cpio).
        epoch = {"SOURCE_DATE_EPOCH": ctx.env["SOURCE_DATE_EPOCH"]} if "SOURCE_DATE_EPOCH" in ctx.env else {}
        arch_pacman.run_in_root(ctx.root, ["mkinitcpio", "-P"], ctx.log, what="mkinitcpio -P", env=epoch)

    def configure_package_manager(self, ctx: BuildContext) -> None:
        write_instance_pacman_config(ctx.root, ctx.spec, {**os.environ, **ctx.env})

    def installed_packages(self, root: Path) -> list[PackageInfo]:
        return arch_pacman.installed_packages(root)

    def kernel_version(self, root: Path, spec: ImageSpec) -> str:
        return kernel_version(root, spec.kernel.package)

    def agent_settings(self, spec: ImageSpec) -> dict[str, object]:
        """Keyrings the instance's pacman populates on first boot: the distribution's, and the ec2
        repository's when its keyring package is in the image."""
        keyrings = list(self.keyrings_for(spec))
        if "ec2-keyring" in spec.packages:
            keyrings.append("ec2")
        return {"pacman_keyrings": keyrings}

    def clean(self, ctx: BuildContext) -> None:
        stop_agent(ctx.work / "gnupg")
        for path in (ctx.root / "etc/pacman.d/gnupg", ctx.work / "gnupg"):
            shutil.rmtree(path, ignore_errors=True)
        empty_dir(ctx.root / "var/cache/pacman/pkg")
        empty_dir(ctx.root / "var/lib/pacman/sync")
        for log in ("var/log/pacman.log",):
            (ctx.root / log).unlink(missing_ok=True)
        ctx.log.info("removed package cache, sync databases, keyring and pacman log from the image")


def _mirror_keyring(paths: PacmanPaths, keyring: str, environ: dict[str, str], ctx: BuildContext) -> Path:
    """The mirror's `<keyring>-keyring` package: verified by the host's keyring, or else by the checksum
    pinned in $ARCHAMI_ARCH_KEYRING. A stale host keyring (Debian 12's has keys that expired) then breaks no
    build, and when neither verifies the error says which and how to pin."""
    pin = pinned_sha256(environ)
    package = f"{keyring}-keyring"
    try:
        found = arch_pacman.download(paths, package, ctx.log)
    except CommandError as exc:
        if pin is None:
            expired, total = expired_keys(keyring_files(keyring)[0])
            raise ArchamiError(
                f"the host's {keyring} keyring ({expired} of {total} keys expired) cannot verify the mirror's "
                f"{package} ({exc}); install a newer {package} on the host, or pin the mirror's package: "
                f"export {KEYRING_PIN_ENV}=sha256:<sha256 of the {package} file you checked>"
            ) from None
        ctx.log.info("the host keyring cannot verify %s (%s): using the pinned checksum", package, exc)
        return arch_pacman.download_pinned(paths, package, pin, ctx.log)
    if pin is not None and hashlib.sha256(found.read_bytes()).hexdigest() != pin:
        raise ArchamiError(f"{found.name} verifies, but its sha256 is not the one pinned in ${KEYRING_PIN_ENV}")
    return found


def write_instance_pacman_config(root: Path, spec: ImageSpec, env: dict[str, str]) -> None:
    """The instance's /etc/pacman.conf (ec2 repo first, mirrors via the mirrorlist) and its mirrorlist.

    The mirrorlist holds the build's mirrors; with `firstboot.region_mirrors` the first-boot agent swaps in
    the list for the instance's region from ec2-pacman-mirrors.
    """
    etc = root / "etc"
    (etc / "pacman.d").mkdir(parents=True, exist_ok=True)
    package_conf = etc / "pacman.conf"
    if not package_conf.is_file():
        raise ArchamiError("no /etc/pacman.conf in the image: the pacman package must be installed")
    shown = [_as_seen_by_instances(r) for r in spec.repositories if r.instances]
    package_conf.write_text(instance_pacman_conf(package_conf.read_text(), shown))
    (root / INSTANCE_MIRRORLIST.lstrip("/")).write_text(
        mirrorlist(mirrors_for(spec.mirrors, env, spec.architecture), header="Mirrors the image was built from.")
    )


def _as_seen_by_instances(repository: Repository) -> Repository:
    """The build may read a repository from a local copy; instances use its public address. A file:// copy
    with no such address would make every `pacman -Sy` on the instance fail: refused."""
    if repository.instance_server is not None:
        return repository.model_copy(update={"server": repository.instance_server})
    if repository.server.startswith("file://"):
        raise ArchamiError(
            f"repository {repository.name!r}: instances cannot reach {repository.server}; set instance_server "
            "(the address you serve it at) or `instances = false` (used by the build only)"
        )
    return repository


def kernel_version(root: Path, kernel_package: str | None = None) -> str:
    """The uname -r of the kernel in ROOT/usr/lib/modules (Arch keeps `pkgbase` and `vmlinuz` there)."""
    modules = root / "usr/lib/modules"
    candidates = sorted(d for d in modules.glob("*") if (d / "vmlinuz").is_file() or (d / "pkgbase").is_file())
    if kernel_package is not None and len(candidates) > 1:
        candidates = [d for d in candidates if _pkgbase(d) == kernel_package] or candidates
    if not candidates:
        raise ArchamiError(f"no kernel found in {modules}")
    if len(candidates) > 1:
        names = ", ".join(d.name for d in candidates)
        raise ArchamiError(f"several kernels in {modules} ({names}): cannot tell which one boots")
    return candidates[0].name


def _pkgbase(module_dir: Path) -> str | None:
    pkgbase = module_dir / "pkgbase"
    return re.sub(r"\s+", "", pkgbase.read_text()) if pkgbase.is_file() else None
