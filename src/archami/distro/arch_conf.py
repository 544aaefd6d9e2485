"""Pure text generators for Arch Linux configuration: pacman.conf, mirrorlist, mkinitcpio.conf.

Nothing here touches the disk or runs a tool, so the exact bytes archami hands to pacman and mkinitcpio
are unit-tested without root.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from archami.config.schema import Repository
from archami.distro.rules import ARCH, PACMAN_DEFAULT_SIGLEVEL, PACMAN_REPOSITORY
from archami.errors import ArchamiError
from archami.safetext import matching, token

MIRROR_ENV = "ARCHAMI_ARCH_MIRROR"
# Arch Linux ARM (aarch64) has its own mirrors, laid out $arch/$repo instead of Arch's $repo/os/$arch.
ALARM_MIRROR_ENV = "ARCHAMI_ALARM_MIRROR"

# The distro's own repositories, in Arch's order ([community] was merged into [extra] in 2023).
ARCH_REPOSITORIES: tuple[str, ...] = ("core", "extra")
# Arch Linux ARM's: Arch's, then [alarm] (its own packages: kernels, firmware, board support).
ALARM_REPOSITORIES: tuple[str, ...] = ("core", "extra", "alarm")


def distro_repositories_for(architecture: str) -> tuple[str, ...]:
    return ALARM_REPOSITORIES if architecture == "aarch64" else ARCH_REPOSITORIES


def mirror_env_for(architecture: str) -> str:
    return ALARM_MIRROR_ENV if architecture == "aarch64" else MIRROR_ENV


def mirror_layout_error(url: str, architecture: str) -> str | None:
    """Why `url` cannot be a mirror template for `architecture` (None: it may be).

    Arch Linux serves $repo/os/$arch; Arch Linux ARM serves $arch/$repo. Arch's layout given for an aarch64
    build (e.g. $ARCHAMI_ARCH_MIRROR copied) finds no aarch64 databases: refused before anything is
    downloaded. Other layouts pass: a private copy is laid out as its owner chose."""
    if architecture == "aarch64" and "$repo/os/$arch" in url:
        return f"mirror {url!r} has Arch Linux's $repo/os/$arch layout; Arch Linux ARM mirrors serve $arch/$repo"
    return None

# Signature checking archami never loosens: every package signed by a trusted key; databases are
# checked when signed (Arch and Arch Linux ARM sign packages, not their databases). The SigLevel words are in
# distro/rules.py.
DEFAULT_SIGLEVEL = PACMAN_DEFAULT_SIGLEVEL
_MODULE = re.compile(r"[A-Za-z0-9_-]{1,55}")

# HOOKS without `autodetect`: the build host's hardware says nothing about an EC2 instance's.
MKINITCPIO_HOOKS: tuple[str, ...] = (
    "base", "systemd", "modconf", "kms", "keyboard", "sd-vconsole", "block", "filesystems", "fsck",
)


def mirrors_for(
    mirrors: Sequence[str], env: Mapping[str, str] | None = None, architecture: str = "x86_64"
) -> list[str]:
    """Mirror server URLs ($repo/$arch templates): the definition's `mirrors`, else $ARCHAMI_ARCH_MIRROR
    ($ARCHAMI_ALARM_MIRROR for aarch64: Arch Linux ARM's mirrors are others).

    The variable may hold several URLs separated by spaces or commas (tried in order by pacman).
    """
    if mirrors:
        return list(mirrors)
    environment = os.environ if env is None else env
    raw = environment.get(mirror_env_for(architecture), "")
    return [url for url in re.split(r"[\s,]+", raw) if url]


def check_siglevel(repository: Repository) -> str:
    """A repository's SigLevel, refused when it would weaken archami's default checking."""
    assert ARCH.siglevel_error is not None
    problem = ARCH.siglevel_error(repository.siglevel)
    if problem:
        raise ArchamiError(f"repository {repository.name!r}: {problem}")
    return " ".join(repository.siglevel.split())


def check_repository_name(name: str) -> str:
    """A section name pacman reads back as exactly this repository (no ']', newline or second section)."""
    matching(name, PACMAN_REPOSITORY, "pacman repository name")
    if name == "options":
        raise ArchamiError("'options' is pacman.conf's own section, not a repository name")
    return name


def _server(url: str) -> str:
    return f"Server = {token(url, 'pacman Server URL')}"


def _repository_section(repository: Repository) -> list[str]:
    name = check_repository_name(repository.name)
    return [f"[{name}]", f"SigLevel = {check_siglevel(repository)}", _server(repository.server), ""]


def pacman_conf(
    *,
    architecture: str,
    mirrors: Sequence[str] = (),
    repositories: Sequence[Repository] = (),
    distro_repositories: Sequence[str] = ARCH_REPOSITORIES,
    mirrorlist_path: str | None = None,
    cache_dir: Path | None = None,
    db_path: Path | None = None,
    gpg_dir: Path | None = None,
    log_file: Path | None = None,
    hook_dirs: Sequence[Path] = (),
    parallel_downloads: int = 5,
) -> str:
    """A complete pacman.conf (for aarch64, Arch Linux ARM's: pass distro_repositories_for("aarch64")).

    Each distro repository gets `Server = ` lines for `mirrors` (the build's pacman.conf), or an
    `Include = mirrorlist_path` when that is given (the instance's pacman.conf). Extra repositories with
    `first = true` come before the distro's own, the rest after, each with its own (never weaker) SigLevel.
    The path options point pacman at archami's own database, keyring and cache instead of the host's.
    """
    if not mirrors and mirrorlist_path is None:
        example = "alarm/$arch/$repo" if architecture == "aarch64" else "archlinux/$repo/os/$arch"
        raise ArchamiError(
            f"no Arch mirror configured: set {mirror_env_for(architecture)} (e.g. https://mirror.example/{example}) "
            "or list `mirrors` in the definition"
        )
    for url in mirrors:
        problem = mirror_layout_error(url, architecture)
        if problem:
            raise ArchamiError(problem)
    names = [check_repository_name(r.name) for r in repositories]
    clash = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(distro_repositories)))
    if clash:
        raise ArchamiError(f"repository names used twice: {', '.join(clash)}")

    lines = ["# Generated by archami: edits are replaced on the next build.", "[options]"]
    for key, value in (
        ("DBPath", db_path), ("CacheDir", cache_dir), ("GPGDir", gpg_dir), ("LogFile", log_file),
    ):
        if value is not None:
            lines.append(f"{key} = {token(str(value), key)}{'/' if key in ('DBPath', 'CacheDir', 'GPGDir') else ''}")
    lines += [f"HookDir = {token(str(d), 'HookDir')}/" for d in hook_dirs]
    lines += [
        f"Architecture = {token(architecture, 'Architecture')}",
        "CheckSpace",
        f"ParallelDownloads = {parallel_downloads}",
        f"SigLevel = {DEFAULT_SIGLEVEL}",
        "",
    ]
    for repository in repositories:
        if repository.first:
            lines += _repository_section(repository)
    for name in distro_repositories:
        lines.append(f"[{check_repository_name(name)}]")
        if mirrorlist_path is not None:
            lines.append(f"Include = {token(mirrorlist_path, 'Include path')}")
        else:
            lines += [_server(url) for url in mirrors]
        lines.append("")
    for repository in repositories:
        if not repository.first:
            lines += _repository_section(repository)
    return "\n".join(lines)


def mirrorlist(mirrors: Sequence[str], header: str = "") -> str:
    """An /etc/pacman.d/mirrorlist: one `Server = ` line per mirror, in preference order."""
    lines = ["# Generated by archami."] + [f"# {line}" for line in header.splitlines()]
    lines += [_server(url) for url in mirrors]
    return "\n".join(lines) + "\n"


MKINITCPIO_DROP_IN = "/etc/mkinitcpio.conf.d/50-archami.conf"


def mkinitcpio_conf(modules: Sequence[str], hooks: Sequence[str] = MKINITCPIO_HOOKS) -> str:
    """A mkinitcpio.conf.d drop-in (sourced after the package's own mkinitcpio.conf, which stays as shipped):
    the definition's modules always included, no host autodetection.

    mkinitcpio (v41) fails on a MODULES entry that is neither a module nor built into the kernel; `name?`
    marks one optional (skipped when the kernel has no such module)."""
    if "autodetect" in hooks:
        raise ArchamiError("mkinitcpio HOOKS must not contain 'autodetect' for a cloud image")
    bad = [m for m in modules if not _MODULE.fullmatch(m.removesuffix("?"))]
    bad += [h for h in hooks if not _MODULE.fullmatch(h)]
    if bad:
        raise ArchamiError(f"invalid initramfs module or hook name(s): {', '.join(map(repr, bad))}")
    return (
        "# Generated by archami: no 'autodetect' hook, so the initramfs does not depend on the build host.\n"
        f"MODULES=({' '.join(modules)})\n"
        f"HOOKS=({' '.join(hooks)})\n"
        "COMPRESSION=\"zstd\"\n"
    )


def instance_pacman_conf(package_conf: str, repositories: Sequence[Repository]) -> str:
    """The instance's /etc/pacman.conf: the pacman package's own file with only its repository sections
    changed — extra repositories with `first = true` before the distro's, the rest after — so [options]
    (HoldPkg, LocalFileSigLevel, DownloadUser...) stays vanilla and `pacman -U`/makepkg work as on Arch."""
    lines = package_conf.splitlines()
    sections = [i for i, line in enumerate(lines) if re.fullmatch(r"\[[^\]]+\]\s*", line)]
    if not any(lines[i].strip() == "[options]" for i in sections):
        raise ArchamiError("the image's /etc/pacman.conf has no [options] section: not pacman's own file")
    repos = [i for i in sections if lines[i].strip() != "[options]"]
    if not repos:
        raise ArchamiError("the image's /etc/pacman.conf names no repository: not pacman's own file")
    first = [line for r in repositories if r.first for line in ("# Added by archami.", *_repository_section(r))]
    after = [line for r in repositories if not r.first for line in ("", "# Added by archami.",
                                                                    *_repository_section(r)[:-1])]
    return "\n".join([*lines[: repos[0]], *first, *lines[repos[0]:], *after]) + "\n"
