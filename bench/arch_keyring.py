"""The Arch build keyring: `pacman-key --init` + `--populate archlinux` cold, and the cached copy a later
build uses instead (the populated keyring is cached per digest of the host's archlinux-keyring files).

    .venv/bin/python bench/arch_keyring.py
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from archami.distro.arch_keyring import prepare_keyring, stop_agent


def main() -> None:
    log = logging.getLogger("bench")
    with tempfile.TemporaryDirectory(prefix="archami-bench-keyring-") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        for label in ("cold (init + populate)", "warm (cached copy)"):
            gpg_dir = Path(tmp) / label.split()[0] / "gnupg"
            started = time.monotonic()
            prepare_keyring(gpg_dir, log, keyrings=("archlinux",), cache_dir=cache)
            print(f"{label:<24} {time.monotonic() - started:6.2f} s")
            stop_agent(gpg_dir)


if __name__ == "__main__":
    main()
