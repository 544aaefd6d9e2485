"""pacman's keyring: a fresh master key per instance, then the archlinux and ec2 keyrings populated.

The keyring is built in a new directory and swapped in only when complete, so a failure or a power cut
never leaves pacman a half-made keyring.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .context import Context

GPGDIR = "/etc/pacman.d/gnupg"


def has_keyring(ctx: Context) -> bool:
    gpgdir = ctx.path(GPGDIR)
    return any(os.path.exists(os.path.join(gpgdir, name)) for name in ("pubring.gpg", "pubring.kbx"))


def make_keyring(ctx: Context, keyrings: list[str]) -> str:
    gpgdir = ctx.path(GPGDIR)
    new, old = gpgdir + ".archami-new", gpgdir + ".archami-old"
    for leftover in (new, old):
        shutil.rmtree(leftover, ignore_errors=True)
    base = ["pacman-key", "--gpgdir", new]
    conf = ctx.path("/etc/pacman.conf")
    if os.path.exists(conf):
        base += ["--config", conf]
    try:
        _build(base, new, keyrings)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if os.path.exists(gpgdir):
        os.rename(gpgdir, old)
    os.rename(new, gpgdir)
    shutil.rmtree(old, ignore_errors=True)
    return "new master key" + (f", populated {', '.join(keyrings)}" if keyrings else "")


def _build(base: list[str], new: str, keyrings: list[str]) -> None:
    try:
        output = _run([*base, "--init"])
        # pacman-key --init exits 0 even when gpg could not make the key (e.g. gpg-agent's socket path is
        # too long): check that a secret master key is really there before trusting anything with it.
        if not _has_secret_key(new):
            failure = [line for line in output.splitlines() if "failed" in line]
            raise RuntimeError(f"pacman-key --init made no master key: {failure[-1] if failure else 'no reason'}")
        if keyrings:
            _run([*base, "--populate", *keyrings])
    finally:
        # pacman-key leaves a gpg-agent serving the new directory; it must not outlive the rename.
        subprocess.run(["gpgconf", "--homedir", new, "--kill", "all"], capture_output=True, check=False)


def _has_secret_key(gpgdir: str) -> bool:
    listing = subprocess.run(["gpg", "--homedir", gpgdir, "--batch", "--with-colons", "--list-secret-keys"],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    return listing.returncode == 0 and any(line.startswith("sec:") for line in listing.stdout.splitlines())


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(f"{' '.join(argv[:1] + argv[3:])} failed: {detail[-1] if detail else result.returncode}")
    return result.stdout + result.stderr
