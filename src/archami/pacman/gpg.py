"""Detached OpenPGP signatures for packages and databases, made and checked with the real `gpg`.

pacman verifies binary (non-armored) detached signatures `FILE.sig`; that is what `sign_detached`
writes. Everything runs with an explicit GnuPG home so a repository key never mixes with a user's own
keyring, and verification imports only the trusted keys into a throwaway home.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from archami.errors import ArchamiError, ToolMissingError
from archami.gnupg_home import reachable_home
from archami.runner import Finished, run_bytes

DEFAULT_KEY_UID = "archami ec2 repository <ec2-repository@archami.invalid>"


class GpgError(ArchamiError):
    """gpg failed, or a signature does not verify."""


def _gpg_binary() -> str:
    found = shutil.which("gpg")
    if found is None:
        raise ToolMissingError("gpg is not installed (Debian package gnupg)")
    return found


def _colons(output: str, record: str) -> list[list[str]]:
    return [line.split(":") for line in output.splitlines() if line.startswith(record + ":")]


class Gpg:
    """One GnuPG home directory. Use as a context manager to stop its gpg-agent afterwards."""

    def __init__(self, home: Path, passphrase_file: Path | None = None) -> None:
        self.home = home
        self.binary = _gpg_binary()
        # A protected key signs unattended with its passphrase read from a file (never a command line).
        self.passphrase_file = passphrase_file

    def __enter__(self) -> Gpg:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_agent()

    def ensure_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.home.chmod(0o700)

    def run(
        self, args: list[str], *, stdin: bytes | None = None, check: bool = True
    ) -> Finished:
        with reachable_home(self.home) as home:
            command = [self.binary, "--homedir", str(home), "--batch", "--no-tty", "--quiet", *args]
            result = run_bytes(command, input_bytes=stdin)
        if check and result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip().splitlines()
            raise GpgError(f"gpg {' '.join(args[:2])} failed: {message[-1] if message else result.returncode}")
        return result

    def stop_agent(self) -> None:
        gpgconf = shutil.which("gpgconf")
        if gpgconf and self.home.exists():
            with reachable_home(self.home) as home:
                run_bytes([gpgconf, "--homedir", str(home), "--kill", "gpg-agent"])

    def secret_fingerprints(self) -> list[str]:
        """Fingerprints of the primary keys with a secret part in this home."""
        if not self.home.exists():
            return []
        out = self.run(["--with-colons", "--list-secret-keys"], check=False).stdout.decode()
        return _primary_fingerprints(out, "sec")

    def fingerprint(self, key: str) -> str:
        """The primary fingerprint of a key named by id, fingerprint or user id (must have a secret part)."""
        result = self.run(["--with-colons", "--list-secret-keys", key], check=False)
        found = _primary_fingerprints(result.stdout.decode(), "sec")
        if len(found) != 1:
            raise GpgError(f"{'no' if not found else 'more than one'} secret key matches {key!r} in {self.home}")
        return found[0]

    def generate_key(self, uid: str = DEFAULT_KEY_UID) -> str:
        """A new ed25519 signing key without passphrase (a repository key used by automation)."""
        self.ensure_home()
        no_passphrase = ["--pinentry-mode", "loopback", "--passphrase", ""]
        self.run([*no_passphrase, "--quick-generate-key", uid, "ed25519", "sign", "never"])
        out = self.run(["--with-colons", "--list-secret-keys", uid]).stdout.decode()
        return _primary_fingerprints(out, "sec")[-1]

    def user_id(self, fingerprint: str) -> str:
        out = self.run(["--with-colons", "--list-keys", fingerprint]).stdout.decode()
        uids = _colons(out, "uid")
        return uids[0][9] if uids else fingerprint

    def export_armored(self, fingerprints: Iterable[str]) -> str:
        out = self.run(["--armor", "--export-options", "export-minimal", "--export", *fingerprints]).stdout.decode()
        if "BEGIN PGP PUBLIC KEY BLOCK" not in out:
            raise GpgError(f"no public key to export for {list(fingerprints)}")
        return out

    def sign_detached(self, path: Path, key: str) -> Path:
        """Write the binary detached signature `path.sig` (what pacman and repo-add expect)."""
        sig = path.with_name(path.name + ".sig")
        unlock = []
        if self.passphrase_file is not None:
            unlock = ["--pinentry-mode", "loopback", "--passphrase-file", str(self.passphrase_file)]
        detached = ["--yes", "--local-user", key, "--no-armor", "--output", str(sig), "--detach-sign", str(path)]
        self.run([*unlock, *detached])
        return sig


def _primary_fingerprints(colons: str, record: str) -> list[str]:
    """The fpr line right after each `record` (pub/sec) line: the primary key's fingerprint."""
    result: list[str] = []
    expect = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == record:
            expect = True
        elif fields[0] == "fpr" and expect:
            result.append(fields[9])
            expect = False
    return result


def key_file_fingerprints(key_file: Path) -> list[str]:
    """Primary fingerprints of the public keys in an (armored or binary) key file, without importing it."""
    with tempfile.TemporaryDirectory(prefix="archami-gpg-") as home:
        gpg = Gpg(Path(home))
        gpg.ensure_home()
        out = gpg.run(["--with-colons", "--import-options", "show-only", "--import", str(key_file)]).stdout.decode()
        return _primary_fingerprints(out, "pub")


class Verifier:
    """Checks detached signatures against an explicit set of trusted public keys (and nothing else)."""

    def __init__(self, key_files: Iterable[Path]) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="archami-verify-")
        self.gpg = Gpg(Path(self._tmp.name))
        self.gpg.ensure_home()
        self.trusted: set[str] = set()
        for key_file in key_files:
            self.gpg.run(["--import", str(key_file)])
            self.trusted.update(key_file_fingerprints(key_file))
        if not self.trusted:
            raise GpgError("no trusted keys to verify signatures with")

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.gpg.stop_agent()
        self._tmp.cleanup()

    def verify(self, data: Path, sig: Path) -> str:
        """The trusted primary fingerprint that made `sig` over `data`; GpgError if none did."""
        if not sig.exists():
            raise GpgError(f"{sig.name}: signature missing")
        result = self.gpg.run(["--status-fd", "1", "--verify", str(sig), str(data)], check=False)
        status = _status(result.stdout.decode())
        if "NO_PUBKEY" in status:
            raise GpgError(f"{sig.name}: signed by key {status['NO_PUBKEY'][0]}, which is not a trusted key")
        if result.returncode != 0 or "GOODSIG" not in status or "VALIDSIG" not in status:
            reason = next((k for k in ("BADSIG", "EXPKEYSIG", "REVKEYSIG", "ERRSIG", "NODATA") if k in status), "")
            raise GpgError(f"{sig.name}: signature does not verify{f' ({reason})' if reason else ''}")
        primary = status["VALIDSIG"][-1]
        if primary not in self.trusted:
            raise GpgError(f"{sig.name}: signed by {primary}, which is not a trusted key")
        return primary


def _status(output: str) -> dict[str, list[str]]:
    """gpg --status-fd lines: `[GNUPG:] KEYWORD args...` -> {KEYWORD: args}."""
    status: dict[str, list[str]] = {}
    for line in output.splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, *args = line[len("[GNUPG:] ") :].split()
            status[keyword] = args
    return status
