"""Safe file operations inside an image root: paths are resolved as if chrooted, so a symlink in the
image (absolute or `..`) can never make the build write to the build host."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from archami.errors import ArchamiError

_MAX_LINKS = 40


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path of `path` (absolute, inside the image), following the image's symlinks chroot-style."""
    parts = list(PurePosixPath(path).parts[1:])
    current = PurePosixPath("/")
    links = 0
    while parts:
        name = parts.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        candidate = current / name
        host = root / str(candidate).lstrip("/")
        if host.is_symlink() and (parts or follow_last):
            links += 1
            if links > _MAX_LINKS:
                raise ArchamiError(f"too many symbolic links resolving {path} in the image")
            target = PurePosixPath(os.readlink(host))
            parts = list(target.parts[1:] if target.is_absolute() else target.parts) + parts
            current = PurePosixPath("/") if target.is_absolute() else current
            continue
        current = candidate
    return root / str(current).lstrip("/")


def write_file(root: Path, path: str, content: str | bytes, mode: int = 0o644) -> Path:
    """Write a file in the image (replacing a symlink at that path rather than writing through it)."""
    host = resolve_in_root(root, path, follow_last=False)
    host.parent.mkdir(parents=True, exist_ok=True)
    if host.is_symlink() or host.exists():
        if host.is_dir() and not host.is_symlink():
            raise ArchamiError(f"{path} is a directory in the image")
        host.unlink()
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(host, mode)  # not subject to the umask
    return host


def make_symlink(root: Path, path: str, target: str) -> Path:
    host = resolve_in_root(root, path, follow_last=False)
    host.parent.mkdir(parents=True, exist_ok=True)
    if host.is_symlink() or host.is_file():
        host.unlink()
    elif host.exists():
        raise ArchamiError(f"{path} is a directory in the image; cannot replace it with a symlink")
    host.symlink_to(target)
    return host


def remove(root: Path, pattern: str) -> list[str]:
    """Remove files matching a glob (relative to the image root); returns the image paths removed."""
    removed = []
    real_root = root.resolve()
    for host in sorted(root.glob(pattern.lstrip("/"))):
        if host.is_dir() and not host.is_symlink():
            continue
        if not host.parent.resolve().is_relative_to(real_root):
            continue  # reached through a symlink pointing out of the image: not ours to touch
        host.unlink()
        removed.append("/" + str(host.relative_to(root)))
    return removed
