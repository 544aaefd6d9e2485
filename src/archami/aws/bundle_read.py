"""Read an instance-store bundle back: check digests and signature, decrypt, unpack the image.

Used to verify a bundle before uploading it (and by the tests to round-trip the format).
"""

from __future__ import annotations

import hashlib
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from archami.errors import ArchamiError


@dataclass(frozen=True)
class BundleManifest:
    name: str
    architecture: str
    kernel_id: str | None
    size: int
    bundled_size: int
    digest: str
    parts: list[tuple[str, str]]  # (filename, sha1 hex)
    ec2_encrypted_key: bytes
    ec2_encrypted_iv: bytes
    user_encrypted_key: bytes
    user_encrypted_iv: bytes
    signed_bytes: bytes
    signature: bytes


def _text(root: ET.Element, path: str) -> str:
    element = root.find(path)
    if element is None or element.text is None:
        raise ArchamiError(f"bundle manifest: missing {path}")
    return element.text


def parse_manifest(path: Path) -> BundleManifest:
    root = ET.fromstring(path.read_bytes())
    machine = root.find("machine_configuration")
    image = root.find("image")
    if machine is None or image is None:
        raise ArchamiError("bundle manifest: missing machine_configuration or image")
    parts = sorted(
        ((int(p.get("index", "-1")), _text(p, "filename"), _text(p, "digest")) for p in image.iter("part")),
    )
    if [index for index, _, _ in parts] != list(range(len(parts))):
        raise ArchamiError("bundle manifest: part indices are not 0..N-1")
    kernel = machine.find("kernel_id")
    return BundleManifest(
        name=_text(image, "name"),
        architecture=_text(machine, "architecture"),
        kernel_id=kernel.text if kernel is not None else None,
        size=int(_text(image, "size")),
        bundled_size=int(_text(image, "bundled_size")),
        digest=_text(image, "digest"),
        parts=[(name, digest) for _, name, digest in parts],
        ec2_encrypted_key=bytes.fromhex(_text(image, "ec2_encrypted_key")),
        ec2_encrypted_iv=bytes.fromhex(_text(image, "ec2_encrypted_iv")),
        user_encrypted_key=bytes.fromhex(_text(image, "user_encrypted_key")),
        user_encrypted_iv=bytes.fromhex(_text(image, "user_encrypted_iv")),
        signed_bytes=ET.tostring(machine) + ET.tostring(image),
        signature=bytes.fromhex(_text(root, "signature")),
    )


def verify_signature(manifest: BundleManifest, public_key: rsa.RSAPublicKey) -> None:
    public_key.verify(manifest.signature, manifest.signed_bytes, rsa_padding.PKCS1v15(), hashes.SHA1())


def unbundle(manifest_path: Path, private_key: rsa.RSAPrivateKey, out_dir: Path, *, as_ec2: bool = True) -> Path:
    """Decrypt with EC2's key (as_ec2) or the bundler's own key; returns the extracted image path."""
    manifest = parse_manifest(manifest_path)
    encrypted_key, encrypted_iv = (
        (manifest.ec2_encrypted_key, manifest.ec2_encrypted_iv)
        if as_ec2
        else (manifest.user_encrypted_key, manifest.user_encrypted_iv)
    )
    key = bytes.fromhex(private_key.decrypt(encrypted_key, rsa_padding.PKCS1v15()).decode())
    iv = bytes.fromhex(private_key.decrypt(encrypted_iv, rsa_padding.PKCS1v15()).decode())
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    gunzip = zlib.decompressobj(31)
    tar_sha1 = hashlib.sha1()
    out_dir.mkdir(parents=True, exist_ok=True)
    tar = subprocess.Popen(["tar", "--extract", "--sparse", "--directory", str(out_dir)], stdin=subprocess.PIPE)
    assert tar.stdin is not None
    bundled = 0

    def feed(plain: bytes) -> None:
        data = gunzip.decompress(plain)
        tar_sha1.update(data)
        tar.stdin.write(data)  # type: ignore[union-attr]

    for filename, digest in manifest.parts:
        data = (manifest_path.parent / filename).read_bytes()
        bundled += len(data)
        if hashlib.sha1(data).hexdigest() != digest:
            raise ArchamiError(f"bundle part {filename}: SHA-1 mismatch")
        feed(unpadder.update(decryptor.update(data)))
    feed(unpadder.update(decryptor.finalize()) + unpadder.finalize())
    rest = gunzip.flush()
    tar_sha1.update(rest)
    tar.stdin.write(rest)
    tar.stdin.close()
    if tar.wait() != 0:
        raise ArchamiError("tar could not extract the bundle")
    if bundled != manifest.bundled_size:
        raise ArchamiError(f"bundle: parts hold {bundled} bytes, manifest says {manifest.bundled_size}")
    if tar_sha1.hexdigest() != manifest.digest:
        raise ArchamiError("bundle: the tar stream's SHA-1 does not match the manifest")
    members = [p for p in out_dir.iterdir() if p.is_file()]
    if len(members) != 1:
        raise ArchamiError(f"bundle: expected one image file, found {len(members)}")
    return members[0]
