"""Running host tools for the Arch backend: logged, with one clear error when they fail or are missing."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from archami.errors import ArchamiError, ToolMissingError

# Debian package that provides each tool, for the "how to install" half of the error.
_PROVIDER = {
    "pacman": "pacman-package-manager",
    "pacman-key": "pacman-package-manager",
    "gpg": "gnupg",
    "unshare": "util-linux",
    "chroot": "coreutils",
    "bsdtar": "libarchive-tools",
}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = _PROVIDER.get(name, name)
        raise ToolMissingError(f"{name} is not installed (Debian/Ubuntu: apt-get install {package})")
    return path


def run_logged(
    cmd: Sequence[str],
    log: logging.Logger,
    *,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    what: str = "",
) -> str:
    """Run a command, log its combined output, and return it; a non-zero exit raises ArchamiError."""
    require_tool(cmd[0])
    log.info("$ %s", " ".join(cmd))
    proc = subprocess.run(
        list(cmd),
        input=input_text,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env) if env is not None else None,
        check=False,
    )
    for line in proc.stdout.splitlines():
        log.debug("  %s", line)
    if proc.returncode != 0:
        tail = " | ".join(proc.stdout.strip().splitlines()[-5:])
        raise ArchamiError(f"{what or cmd[0]} failed (exit {proc.returncode}): {tail}")
    return proc.stdout
