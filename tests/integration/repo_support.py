"""Helpers for the repository integration tests: throwaway GnuPG homes, a loopback HTTP server, and
real pacman run against a fresh root with its own database, keyring, cache and configuration."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from archami.pacman.gpg import Gpg

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = REPO_ROOT / "packages"
TEST_MIRROR = "http://127.0.0.1:9/$repo/os/$arch"  # written into mirror lists, never contacted


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    assert not missing, f"missing host tools {missing}: run `make deps`"


def copy_packages(target: Path) -> Path:
    """A copy of packages/ without a key file, so each test session makes and trusts its own key."""
    shutil.copytree(PACKAGES, target)
    (target / "ec2-keyring/ec2.gpg").unlink(missing_ok=True)
    return target


def new_key(home: Path, uid: str) -> tuple[Gpg, str]:
    gpg = Gpg(home)
    return gpg, gpg.generate_key(uid)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_server(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def pacman_keyring(gpgdir: Path, key_file: Path, fingerprints: list[str]) -> Path:
    """A pacman keyring trusting key_file's keys, made the manual way (pacman-key --add + --lsign-key)."""
    for args in (["--init"], ["--add", str(key_file)], *(["--lsign-key", f] for f in fingerprints)):
        subprocess.run(["pacman-key", "--gpgdir", str(gpgdir), *args], capture_output=True, check=True)
    stop_agent(gpgdir)
    return gpgdir


def stop_agent(gpgdir: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(gpgdir), "--kill", "all"], capture_output=True, check=False)


def pacman_install(
    root: Path, server_url: str, gpgdir: Path, packages: list[str], repo: str = "ec2"
) -> subprocess.CompletedProcess[str]:
    """`pacman -Sy` with SigLevel = Required into a fresh root. Scriptlets are off: the root has no
    /bin/sh (pacman would report a failed scriptlet and still exit 0) and no dependencies (-dd)."""
    (root / "var/lib/pacman").mkdir(parents=True, exist_ok=True)
    config = root.parent / f"{root.name}-pacman.conf"
    config.write_text(
        "[options]\nArchitecture = x86_64\nSigLevel = Required\nLocalFileSigLevel = Required\n"
        f"[{repo}]\nServer = {server_url}\n"
    )
    command = [
        "pacman", "--noconfirm", "--noprogressbar", "--root", str(root), "--dbpath", str(root / "var/lib/pacman"),
        "--gpgdir", str(gpgdir), "--config", str(config), "--cachedir", str(root.parent / f"{root.name}-cache"),
        "--logfile", str(root.parent / f"{root.name}-pacman.log"), "--noscriptlet", "-Sy", "-dd", *packages,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}, timeout=120)
    stop_agent(gpgdir)
    return result


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Change one byte in place (same size, so only checksums and signatures can tell)."""
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
