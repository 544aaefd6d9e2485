"""Debian backend: mmdebstrap root filesystems, initramfs-tools, dpkg-query manifests.

Signature checking stays apt's default (debian-archive-keyring): archami never passes --no-check-gpg or
[trusted=yes]. The mirror is the definition's `mirrors`, else $ARCHAMI_DEBIAN_MIRROR, else mmdebstrap's own
default, so archami itself names no mirror host.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import shlex
import shutil
from pathlib import Path

from archami.artifacts import PackageInfo
from archami.config.spec import ImageSpec
from archami.distro import debian_repos
from archami.distro.base import BuildContext, DistroBackend
from archami.distro.rules import DEBIAN
from archami.errors import ArchamiError
from archami.hosttools import require, tool_path
from archami.runner import run, run_in_root
from archami.safetext import matching

MIRROR_ENV = "ARCHAMI_DEBIAN_MIRROR"
DEB_ARCH = DEBIAN.architectures

# Files dpkg never unpacks (kept out of the image, and of later upgrades, via dpkg.cfg.d): documentation,
# manual pages and translations. Copyright files stay, the licences require them.
DPKG_EXCLUDES = [
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
]
APT_OPTIONS = ['APT::Install-Recommends "false"', 'Acquire::Languages "none"']


def bootstrap_packages(spec: ImageSpec) -> list[str]:
    """The spec's packages plus what the EC2 build itself relies on in a Debian image."""
    # mount: systemd mounts /tmp, /boot/efi... with it; not essential (mmdebstrap --variant=apt leaves it out)
    # and since forky no longer pulled in by systemd.
    needed = ["systemd-sysv", "udev", "mount", "initramfs-tools", "zstd", "openssh-server"]
    if spec.network.stack == "networkd":
        needed.append("systemd-resolved")  # a separate package since bookworm; DNS from DHCP needs it
    else:
        needed.append("isc-dhcp-client")
    if spec.architecture == "aarch64":
        # Debian builds grub-efi-arm64-bin for arm64 only: an x86_64 build host has no arm64-efi GRUB, so the
        # image brings its own (grub-mkimage then runs inside the root, under qemu-user).
        needed.append("grub-efi-arm64-bin")
    if spec.firstboot.agent == "archami":
        needed.append("python3")  # the agent needs json, shutil, http: not in python3-minimal
    else:
        needed += ["cloud-init", "cloud-guest-utils"]  # cloud-init's growpart module runs its growpart
    wanted = [p for p in dict.fromkeys([*spec.packages, *needed]) if p not in spec.removed]
    return sorted(wanted)


def mirrors(spec: ImageSpec) -> list[str]:
    """Mirrors to bootstrap from. A mirror with "$region" in it is the instances' (the first-boot agent
    fills in the region); it cannot serve the build."""
    usable = [m for m in spec.mirrors if "$region" not in m]
    if usable:
        return usable
    env = os.environ.get(MIRROR_ENV, "").strip()
    return env.split() if env else []


def _repository_inputs(spec: ImageSpec) -> list[dict[str, object]]:
    """The extra repositories as the root cache sees them (their key by digest); refused here, before the
    build, when apt could not use them."""
    if spec.repositories and not mirrors(spec):
        raise ArchamiError(f"[[repositories]] in a Debian definition need `mirrors` (or ${MIRROR_ENV}) too: "
                           "mmdebstrap uses its default mirror only when it is given no source at all")
    debian_repos.check(spec)
    return [{**r.model_dump(), "key": hashlib.sha256(Path(str(r.key)).read_bytes()).hexdigest()}
            for r in spec.repositories]


class DebianBackend(DistroBackend):
    rules = DEBIAN

    def cache_inputs(self, spec: ImageSpec) -> dict[str, object]:
        """Everything that determines the bootstrapped root (the root cache key hashes this)."""
        return {
            "tool": "mmdebstrap",
            "variant": "apt",
            "suite": spec.variant.release,
            "arch": DEB_ARCH[spec.architecture],
            "packages": bootstrap_packages(spec),
            "removed": sorted(spec.removed),
            "mirrors": mirrors(spec),
            "repositories": _repository_inputs(spec),
            "dpkg": DPKG_EXCLUDES,
            "hooks": ["merged-usr", "eatmydata", "excludes-file"],
            "apt": APT_OPTIONS,
            "sources": _development_release_hooks(spec.variant.release),
            "freshness": _freshness_options(),
        }

    def bootstrap(self, ctx: BuildContext) -> None:
        require("mmdebstrap", "debian-archive-keyring", "unshare")
        debs = ctx.cache / "debs" / f"debian-{ctx.spec.variant.release}-{DEB_ARCH[ctx.spec.architecture]}"
        debs.mkdir(parents=True, exist_ok=True)
        packages = bootstrap_packages(ctx.spec)
        # apt-get install "pkg-" removes pkg: removals happen in the same transaction as the installs.
        include = ",".join([*packages, *(f"{p}-" for p in ctx.spec.removed)])
        args: list[str] = [
            # mmdebstrap's root mode mounts /proc, /sys and /dev in the chroot; a private mount namespace
            # makes those mounts disappear with the process, whatever way it ends.
            "unshare", "--mount", "--propagation", "private", "--fork", "--kill-child",
            tool_path("mmdebstrap"), "--mode=root", "--variant=apt", "--format=directory",
            f"--architectures={DEB_ARCH[ctx.spec.architecture]}", f"--include={include}",
            # The excludes go into the new root's dpkg.cfg.d rather than --dpkgopt: with --dpkgopt
            # mmdebstrap filters every essential package through a Python helper (~80 interpreter starts,
            # 25-60 s here). dpkg honours the file for every real install; `clean` removes what the first,
            # crude unpack of the essential packages left.
            f"--setup-hook={_write_excludes_hook()}",
            *(f"--aptopt={o}" for o in APT_OPTIONS),
            *_development_release_hooks(ctx.spec.variant.release),
            *_freshness_options(ctx.log),
            # Merged /usr by the usr-is-merged package, not usrmerge (which drags in perl: ~50 MB).
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            # dpkg without fsync (removed again before mmdebstrap finishes): the root is a throwaway
            # directory until it is packed, so durability of each file is pointless and slow.
            "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",
            # The package cache: synced into apt's archive dir before downloading, and back out after.
            "--skip=essential/unlink",
            "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
            f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
            f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
            ctx.spec.variant.release, str(ctx.root), *mirrors(ctx.spec),
        ]
        # The kernel's postinst would build an initramfs now; regenerate_initramfs builds the real one.
        env = {"INITRD": "No", "TMPDIR": str(ctx.work)}
        with debian_repos.build_sources(ctx.spec) as repository_lines:
            run([*args, *repository_lines], ctx.log, env=env)
        _prune_superseded_debs(debs, self.installed_packages(ctx.root))

    def regenerate_initramfs(self, ctx: BuildContext) -> None:
        """initramfs-tools with MODULES=list: exactly the definition's modules (+ the root filesystem's),
        nothing autodetected from the build host. A build whose initramfs inputs are unchanged (same
        packages, modules and initramfs configuration -- a config-only change) reuses the one it made."""
        conf = ctx.root / "etc/initramfs-tools"
        modules = list(dict.fromkeys([*ctx.spec.kernel.initramfs_modules, ctx.spec.disk.filesystem]))
        (conf / "conf.d").mkdir(parents=True, exist_ok=True)
        compress = "zstd" if (ctx.root / "usr/bin/zstd").exists() else "gzip"
        (conf / "conf.d/archami.conf").write_text(
            f"# Written by archami: no host autodetection, modules from the image definition.\n"
            f"MODULES=list\nCOMPRESS={compress}\n"
        )
        # Put in, not loaded: initramfs-tools loads every module of its `modules` file at boot, whether or not
        # the machine has the hardware (on a Nitro instance, the Xen drivers; under QEMU, ENA's and Xen's), so
        # the list goes to the hook, and udev loads a driver when its device appears.
        (conf / "modules").write_text(f"# Written by archami: the definition's modules are in {MODULE_LIST}.\n")
        (ctx.root / MODULE_LIST.lstrip("/")).write_text(initramfs_modules_text(modules))
        hook = conf / "hooks" / INITRAMFS_HOOK
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(INITRAMFS_HOOK_TEXT)
        hook.chmod(0o755)
        for version in _kernel_versions(ctx.root):
            initrd = ctx.root / f"boot/initrd.img-{version}"
            cached = ctx.cache / "initramfs" / f"initrd.img-{version}-{initramfs_key(ctx, version)[:24]}"
            if cached.exists():
                ctx.log.info("initramfs for %s: unchanged inputs, reusing %s", version, cached)
                shutil.copyfile(cached, initrd)
            else:
                mode = "-u" if initrd.exists() else "-c"
                # mkinitramfs honours SOURCE_DATE_EPOCH (file times, cpio --reproducible, no threads).
                run_in_root(ctx.root, [*_env_prefix(ctx), "update-initramfs", mode, "-k", version], ctx.log,
                            what="update-initramfs")
                _store_atomically(initrd, cached)
            # Debian's own tool keeps /vmlinuz and /initrd.img pointing at the newest kernel.
            run_in_root(ctx.root, ["linux-update-symlinks", "install", version, f"/boot/vmlinuz-{version}"], ctx.log)

    def tune_boot(self, ctx: BuildContext) -> None:
        """Debian's boot-time work an EC2 instance has no use for (figures: bench/boot_debian.py, TCG)."""
        for unit in UNITS_NOT_STARTED:
            for link in sorted((ctx.root / "etc/systemd/system").glob(f"*.wants/{unit}")):
                link.unlink()
                ctx.log.info("not started at boot: %s", unit)
        # Debian's ssh.service runs `sshd -t` before sshd itself: a second sshd start (0.3-0.7 s under TCG) on
        # the way to the first login that checks nothing sshd does not check itself as it starts (a bad
        # configuration fails the unit either way, with the same message). ExecReload keeps its check.
        dropin = ctx.root / "etc/systemd/system/ssh.service.d/10-archami-first-login.conf"
        if (ctx.root / "usr/lib/systemd/system/ssh.service").exists():
            dropin.parent.mkdir(parents=True, exist_ok=True)
            # And while the machine boots, sshd (and the pre-login part of each connection, in its cgroup)
            # gets a larger share of the CPU than the services starting beside it, like the first-boot agent.
            dropin.write_text("# Written by archami: no second sshd start (its configuration test); more CPU at boot.\n"
                              "[Service]\nExecStartPre=\nStartupCPUWeight=1000\n")

    def configure_package_manager(self, ctx: BuildContext) -> None:
        """Keep the instance's apt and dpkg as lean as the image, under archami's own file names
        (mmdebstrap's 99mmdebstrap files are bootstrap leftovers the audit rejects)."""
        (ctx.root / "etc/apt/apt.conf.d/99mmdebstrap").unlink(missing_ok=True)
        (ctx.root / "etc/dpkg/dpkg.cfg.d/99mmdebstrap").unlink(missing_ok=True)
        (ctx.root / "etc/apt/apt.conf.d/50archami").write_text(
            "// Written by archami: keep instances as small as the image.\n" + "".join(f"{o};\n" for o in APT_OPTIONS)
        )
        (ctx.root / EXCLUDES_FILE).write_text(_excludes_text())
        debian_repos.configure_for_instances(ctx.root, ctx.spec)

    def installed_packages(self, root: Path) -> list[PackageInfo]:
        out = run(
            [tool_path_dpkg_query(), f"--admindir={root / 'var/lib/dpkg'}", "-W",
             "-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"],
            _quiet_logger(), capture=True,
        )
        packages = []
        for line in out.splitlines():
            status, name, version, arch = line.split("\t")
            if status.startswith("ii"):
                packages.append(PackageInfo(name=name, version=version, architecture=arch))
        return sorted(packages, key=lambda p: p.name)

    def kernel_version(self, root: Path, spec: ImageSpec) -> str:
        versions = _kernel_versions(root)
        if not versions:
            raise ArchamiError(f"no kernel installed in {root} (is the kernel package in the definition?)")
        return versions[-1]

    def agent_settings(self, spec: ImageSpec) -> dict[str, object]:
        """An apt mirror template with "$region" in it is the instances': the agent fills in the region."""
        return {"apt_region_mirror": next((m for m in spec.mirrors if "$region" in m), None), "pacman_keyrings": []}

    def clean(self, ctx: BuildContext) -> None:
        root = ctx.root
        ctx.log.info("removed %d files dpkg's path excludes cover", remove_excluded(root))
        for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                        "var/cache/apt/archives/partial/*", "var/cache/debconf/*-old", "var/lib/dpkg/*-old"):
            for path in root.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def initramfs_modules_text(modules: list[str]) -> str:
    """initramfs-tools' modules file: one module name per line (a name with a space or newline is refused)."""
    for name in modules:
        matching(name, _MODULE, "kernel module name")
    return "# Written by archami (kernel.initramfs_modules)\n" + "".join(f"{m}\n" for m in modules)


_MODULE = re.compile(r"[A-Za-z0-9_-]{1,55}")


# e2fsprogs' e2scrub_reap removes stale e2scrub snapshots, which exist only on LVM volumes: an image has none.
UNITS_NOT_STARTED = ("e2scrub_reap.service",)

INITRAMFS_HOOK = "archami"
MODULE_LIST = "/etc/initramfs-tools/archami-modules"  # kernel.initramfs_modules and the root filesystem's
# Runs after the packages' hooks (mkinitramfs runs /etc's hooks last).
INITRAMFS_HOOK_TEXT = """\
#!/bin/sh
# Written by archami.
case "$1" in prereqs) exit 0 ;; esac
if [ -r @MODULE_LIST@ ]; then
    . /usr/share/initramfs-tools/hook-functions
    while read -r module; do
        case "$module" in ""|"#"*) ;; *) manual_add_modules "$module" ;; esac
    done < @MODULE_LIST@
fi
# udev's hardware database (13 MB, a third of the initramfs) describes USB, input and PCI devices: nothing the
# initramfs needs to find the root disk, and GRUB and the kernel read and unpack every byte of it.
rm -f "${DESTDIR}/usr/lib/udev/hwdb.bin"
# systemd's own rules tag block and network devices for PID 1. initramfs-tools leaves them out, so the udev
# database it hands to the booted root told systemd of no device: the root and ESP device units waited for
# udev in the root to process every device again (10-12 s after PID 1 under TCG). Their RUN programs
# (systemd-sysctl) are not in the initramfs; udev in the root runs them.
if [ -e /usr/lib/udev/rules.d/99-systemd.rules ]; then
    mkdir -p "${DESTDIR}/usr/lib/udev/rules.d"
    grep -v 'RUN+=' /usr/lib/udev/rules.d/99-systemd.rules > "${DESTDIR}/usr/lib/udev/rules.d/99-systemd.rules"
fi
""".replace("@MODULE_LIST@", MODULE_LIST)


# What an initramfs is made from, besides the packages: configuration the definition's files may touch.
_INITRAMFS_CONFIG_DIRS = ("etc/initramfs-tools", "etc/modprobe.d", "usr/lib/modprobe.d", "etc/udev/rules.d")


def initramfs_key(ctx: BuildContext, version: str) -> str:
    """Digest of everything the initramfs is built from: every installed package version (dpkg's status
    file), the kernel version, and the initramfs/modprobe/udev configuration in the root."""
    digest = hashlib.sha256(version.encode())
    digest.update(repr(sorted(ctx.env.items())).encode())  # SOURCE_DATE_EPOCH is in every file's time stamp
    digest.update((ctx.root / "var/lib/dpkg/status").read_bytes())
    for directory in _INITRAMFS_CONFIG_DIRS:
        base = ctx.root / directory
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            if path.is_file():
                digest.update(str(path.relative_to(ctx.root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _env_prefix(ctx: BuildContext) -> list[str]:
    """`env K=V ...` for a command in the root (run_in_root gives it a clean environment)."""
    return ["env", *(f"{k}={v}" for k, v in sorted(ctx.env.items()))] if ctx.env else []


def _store_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    # Keep the cache small: only the newest few initramfs images.
    images = sorted(target.parent.glob("initrd.img-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in images[8:]:
        old.unlink(missing_ok=True)


EXCLUDES_FILE = "etc/dpkg/dpkg.cfg.d/50archami-excludes"


def _excludes_text() -> str:
    return (
        "# Written by archami: no documentation, manual pages or translations (copyright files stay).\n"
        + "".join(f"{o}\n" for o in DPKG_EXCLUDES)
    )


# A package archive copy that is older than its Release file's Valid-Until (a frozen mirror, e.g. a test
# machine's) fails apt's freshness check. Turning the check off is for such test machines only: signatures are
# still verified, but a replayed old archive would no longer be noticed. Never written into the image.
STALE_ARCHIVE_ENV = "ARCHAMI_DEBIAN_ALLOW_STALE_ARCHIVE"


def _freshness_options(log: logging.Logger | None = None) -> list[str]:
    if os.environ.get(STALE_ARCHIVE_ENV) != "1":
        return []
    if log is not None:
        log.info("WARNING: $%s=1: apt's Valid-Until check is off for this bootstrap", STALE_ARCHIVE_ENV)
    return ['--aptopt=Acquire::Check-Valid-Until "false"']


def _development_release_hooks(release: str) -> list[str]:
    """For Debian testing/unstable: a setup hook (after mmdebstrap writes sources.list, before apt update)
    that leaves out the <release>-updates and -security lines mmdebstrap adds for a codename."""
    if release not in DEBIAN.development_releases:
        return []
    suites = " ".join(f"-e '/ {release}-{kind} /d'" for kind in ("updates", "security"))
    return [f'--setup-hook=sed -i {suites} "$1"/etc/apt/sources.list']


def _write_excludes_hook() -> str:
    """A mmdebstrap setup hook (shell, $1 = the new root) writing dpkg's path excludes."""
    target = f'"$1"/{EXCLUDES_FILE}'
    return f'mkdir -p "$1"/etc/dpkg/dpkg.cfg.d && printf %s {shlex.quote(_excludes_text())} > {target}'


def excluded(path: str) -> bool:
    """Whether dpkg, with DPKG_EXCLUDES, would not have installed `path` (the last matching rule wins)."""
    verdict = False
    for rule in DPKG_EXCLUDES:
        kind, pattern = rule.split("=", 1)
        if fnmatch.fnmatchcase(path, pattern):
            verdict = kind == "path-exclude"
    return verdict


def remove_excluded(root: Path) -> int:
    """Delete files the path excludes cover (left by mmdebstrap's first unpack); returns how many."""
    count = 0
    prefixes = {rule.split("=", 1)[1].split("*", 1)[0].rstrip("/") for rule in DPKG_EXCLUDES}
    for prefix in sorted(prefixes):
        base = root / prefix.lstrip("/")
        if not base.is_dir() or base.is_symlink():
            continue
        for path in sorted(base.rglob("*"), reverse=True):  # children before their directories
            inside = "/" + str(path.relative_to(root))
            if path.is_dir() and not path.is_symlink():
                if not any(path.iterdir()):
                    path.rmdir()
            elif excluded(inside):
                path.unlink()
                count += 1
    return count


def _kernel_versions(root: Path) -> list[str]:
    boot = root / "boot"
    found = [p.name.removeprefix("vmlinuz-") for p in boot.glob("vmlinuz-*")]
    return sorted(v for v in found if (root / "usr/lib/modules" / v).is_dir() or (root / "lib/modules" / v).is_dir())


def _prune_superseded_debs(debs: Path, installed: list[PackageInfo]) -> None:
    """Drop cached .debs of packages this root has in another version, so the cache does not grow
    across updates; packages other variants use (not in this root) are left alone."""
    current = {p.name: p.version.replace(":", "%3a") for p in installed}
    for deb in debs.glob("*.deb"):
        name, _, rest = deb.name.partition("_")
        version = rest.rsplit("_", 1)[0]
        if name in current and version != current[name]:
            deb.unlink(missing_ok=True)


def tool_path_dpkg_query() -> str:
    found = shutil.which("dpkg-query")
    if found is None:
        raise ArchamiError("dpkg-query is needed to list a Debian image's packages (apt-get install dpkg)")
    return found


def _quiet_logger() -> logging.Logger:
    return logging.getLogger("archami.image.quiet")
