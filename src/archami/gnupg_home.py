"""A GnuPG home reachable by gpg-agent however deep it lies.

gpg-agent makes its sockets in the home directory (a build host has no /run/user/0/gnupg socket dir) and a
Unix socket path holds at most 107 bytes, so a home deep in a work, cache or CI directory makes every gpg
command that needs the agent (key generation, signing, pacman-key --init/--populate/--lsign-key) fail with
"can't connect to the agent" (CI's /tmp/pytest-of-root/pytest-313/popen-gw1/... did). Such a home is
reached through a short symlink: the kernel follows it, gpg sees only the short name.

The agent keeps the home name it was started with and reads its secret keys through it, so a home has
one link for the life of the process (the links live in a private directory removed at exit): a second
name would reach the same agent by its socket, and that agent would find no keys behind a removed name.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Measured with Debian 12's GnuPG 2.2: `pacman-key --init` works from a home of 86 bytes and fails from 87
# (its longest socket, S.gpg-agent.browser, then no longer fits sun_path's 108 with what libassuan needs).
# Homes longer than this margin go through a link; a link costs nothing.
HOME_PATH_MAX = 64
_SHORT_TMP = Path("/tmp")  # not $TMPDIR: it may be as deep as the home
_lock = threading.Lock()
_links: dict[Path, Path] = {}
_link_dir: list[Path] = []


def socket_path_fits(home: Path) -> bool:
    return len(os.fsencode(home)) <= HOME_PATH_MAX


def _private_dir() -> Path:
    if not _link_dir:
        made = Path(tempfile.mkdtemp(prefix="archami-gpg-", dir=_SHORT_TMP if _SHORT_TMP.is_dir() else None))
        atexit.register(shutil.rmtree, made, True)  # removes the links, never what they point to
        _link_dir.append(made)
    return _link_dir[0]


def short_name(home: Path) -> Path:
    """`home` itself when gpg-agent's sockets fit there, else this process's one short link to it."""
    if socket_path_fits(home) or not home.is_dir():
        return home
    target = home.resolve()
    with _lock:
        link = _links.get(target)
        if link is None or not link.is_symlink():
            link = _private_dir() / str(len(_links))
            link.unlink(missing_ok=True)
            link.symlink_to(target, target_is_directory=True)
            _links[target] = link
        return link


@contextmanager
def reachable_home(home: Path) -> Iterator[Path]:
    """`with reachable_home(home) as name:` pass `name` to gpg, gpgconf and pacman-key as the home."""
    yield short_name(home)
