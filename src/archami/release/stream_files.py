"""Signed stream files on disk and their verified reading, from a file or a URL, without AWS credentials.

    <site>/streams/<stream>.json           + .json.sig   (detached OpenPGP signature, binary)
    <site>/streams/<stream>/releases.json  + .json.sig
    <site>/streams/release-key.asc         the release key's public part (trust it from elsewhere too)

Signing uses the release key in its own GnuPG home (pacman/gpg.py's Gpg); verifying imports only the keys
the caller names into a throwaway home (Verifier), so a stream signed by any other key is refused.
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archami.errors import ArchamiError
from archami.pacman.gpg import Gpg, GpgError, Verifier
from archami.release.records import ReleaseRecord
from archami.release.stream import INDEX_NAME, STREAM_DIR, build_index, build_streams

RELEASE_KEY_UID = "archami release key <release@archami.invalid>"
PUBLIC_KEY_NAME = "release-key.asc"
SIG_SUFFIX = ".sig"
_TIMEOUT = 30


@dataclass(frozen=True)
class WrittenStreams:
    directory: Path
    streams: list[Path]
    indexes: list[Path]
    public_key: Path
    fingerprint: str


def release_key(home: Path, key: str | None) -> tuple[Gpg, str]:
    """The signing key in `home`: the one named, the only one there, or a new ed25519 key when it has none."""
    gpg = Gpg(home)
    if key is not None:
        return gpg, gpg.fingerprint(key)
    existing = gpg.secret_fingerprints()
    if len(existing) > 1:
        raise ArchamiError(f"{home} holds {len(existing)} secret keys: name the release key with --key")
    return gpg, existing[0] if existing else gpg.generate_key(RELEASE_KEY_UID)


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)
    return path


def write_streams(records: list[ReleaseRecord], site_dir: Path, gpg: Gpg, fingerprint: str) -> WrittenStreams:
    """Write and sign every stream of these records (one family, newest first) and its release index."""
    directory = site_dir / STREAM_DIR
    streams, indexes = [], []
    for name, document in sorted(build_streams(records).items()):
        stream_path = _write(directory / f"{name}.json", document)
        index_path = _write(directory / name / INDEX_NAME, build_index(records, name))
        for path in (stream_path, index_path):
            gpg.sign_detached(path, fingerprint).chmod(0o644)
        streams.append(stream_path)
        indexes.append(index_path)
    public_key = directory / PUBLIC_KEY_NAME
    directory.mkdir(parents=True, exist_ok=True)
    public_key.write_text(gpg.export_armored([fingerprint]))
    return WrittenStreams(directory, streams, indexes, public_key, fingerprint)


def fetch(location: str) -> bytes | None:
    """A file's bytes, from a path or an http(s)/file URL; None when it does not exist there."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("http", "https", "file"):
        try:
            with urllib.request.urlopen(location, timeout=_TIMEOUT) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise ArchamiError(f"{location}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            if parsed.scheme == "file":
                return None
            raise ArchamiError(f"{location}: {getattr(exc, 'reason', exc)}") from None
    path = Path(location)
    return path.read_bytes() if path.is_file() else None


def index_location(stream_location: str) -> str:
    """Where a stream's release index is: <dir>/<stream>/releases.json beside <dir>/<stream>.json."""
    base, _, name = stream_location.rpartition("/")
    stem = name.removesuffix(".json")
    return f"{base}/{stem}/{INDEX_NAME}" if base else f"{stem}/{INDEX_NAME}"


@dataclass(frozen=True)
class VerifiedStream:
    location: str
    document: dict[str, Any]
    index: dict[str, Any] | None  # None when the stream has no release index beside it
    signer: str  # fingerprint of the trusted key that signed them


def _verified(verifier: Verifier, location: str, data: bytes, scratch: Path) -> str:
    signature = fetch(location + SIG_SUFFIX)
    if signature is None:
        raise GpgError(f"{location}: no signature ({location}{SIG_SUFFIX} is missing)")
    name = Path(urllib.parse.urlparse(location).path).name or "document"
    data_path, sig_path = scratch / name, scratch / (name + SIG_SUFFIX)
    data_path.write_bytes(data)
    sig_path.write_bytes(signature)
    return verifier.verify(data_path, sig_path)


def load_verified(location: str, key_files: list[Path], *, with_index: bool = True) -> VerifiedStream:
    """The stream at `location`, its signature checked against `key_files` (and its index's, when present)."""
    data = fetch(location)
    if data is None:
        raise ArchamiError(f"{location}: no such stream")
    with Verifier(key_files) as verifier, tempfile.TemporaryDirectory(prefix="archami-stream-") as tmp:
        signer = _verified(verifier, location, data, Path(tmp))
        document = _parse(location, data)
        index = None
        if with_index:
            where = index_location(location)
            index_data = fetch(where)
            if index_data is not None:
                (Path(tmp) / "index").mkdir()
                _verified(verifier, where, index_data, Path(tmp) / "index")
                index = _parse(where, index_data)
    return VerifiedStream(location, document, index, signer)


def load_unverified(location: str) -> dict[str, Any]:
    data = fetch(location)
    if data is None:
        raise ArchamiError(f"{location}: no such stream")
    return _parse(location, data)


def _parse(location: str, data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ArchamiError(f"{location}: not JSON: {exc}") from None
    if not isinstance(document, dict) or ("architectures" not in document and "releases" not in document):
        raise ArchamiError(f"{location}: not an archami stream or release index")
    return document
