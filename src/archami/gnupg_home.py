"""A GnuPG home reachable by gpg-agent however deep it lies.

gpg-agent makes its sockets in the home directory (a build host has no /run/user/0/gnupg socket dir) and a
Unix socket path holds at most 107 bytes, so a home deep in a work, cache or CI directory makes every gpg
command that needs the agent (key generation, signing, pacman-key --init/--populate/--lsign-key) fail with
"can't connect to the agent" (CI's /tmp/pytest-of-root/pytest-313/... did). Such a home is reached
through a short symlink: the kernel follows it, gpg sees only the short name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Measured with Debian 12's GnuPG 2.2: `pacman-key --init` works from a home of 86 bytes and fails from 87
# (its longest socket, S.gpg-agent.browser, then no longer fits sun_path's 108 with what libassuan needs).
# Homes longer than this margin go through the link; the link costs nothing.
HOME_PATH_MAX = 64
_SHORT_TMP = Path("/tmp")  # not $TMPDIR: it may be as deep as the home


def socket_path_fits(home: Path) -> bool:
    return len(os.fsencode(home)) <= HOME_PATH_MAX


@contextmanager
def reachable_home(home: Path) -> Iterator[Path]:
    """A name for `home` short enough for gpg-agent's sockets: `home` itself, or a temporary symlink to it."""
    if socket_path_fits(home) or not home.is_dir():
        yield home
        return
    link_dir = Path(tempfile.mkdtemp(prefix="archami-gpg-", dir=_SHORT_TMP if _SHORT_TMP.is_dir() else None))
    link = link_dir / "h"
    try:
        link.symlink_to(home.resolve(), target_is_directory=True)
        yield link
    finally:
        shutil.rmtree(link_dir, ignore_errors=True)  # removes the link, never what it points to
