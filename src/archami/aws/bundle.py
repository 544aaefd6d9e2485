"""The EC2 instance-store ("S3-backed") AMI bundle: what ec2-bundle-image writes, version 2007-10-10.

    image.raw --tar (GNU sparse)--> --gzip--> --AES-128-CBC--> split into 10 MiB parts NAME.part.NN
    NAME.manifest.xml: sizes, SHA-1 digests of the tar stream and of each part, the AES key and IV (as
    hex strings) encrypted with RSA PKCS#1 v1.5 for EC2's certificate and for the bundler's own key, and
    an RSA-SHA1 signature over <machine_configuration> + <image>.

Written by hand because the only implementations are Amazon's Ruby ec2-ami-tools and the retired
euca2ools; the pieces (tar, gzip, AES, RSA) are the standard tools and the `cryptography` library. The
reader (parse_manifest, verify_signature, unbundle) checks digests and signature, decrypts and unpacks a
bundle: used to verify the format, and by the tests to round-trip it.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE, Popen  # types and the pipe constant; processes start via archami.runner
from xml.etree import ElementTree as ET

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from archami.errors import ArchamiError
from archami.runner import spawn

MANIFEST_VERSION = "2007-10-10"
PART_SIZE = 10 * 1024 * 1024
BUNDLER = ("archami", "1", "1")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    directory: Path
    manifest: Path
    parts: list[Path]
    size: int  # the image's size
    bundled_size: int  # sum of the parts


def _load_public_key(certificate_pem: bytes) -> rsa.RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except ValueError as exc:
        raise ArchamiError(f"publish.ec2_certificate (--ec2-cert): not a PEM X.509 certificate ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ArchamiError("publish.ec2_certificate (--ec2-cert): the EC2 bundling certificate must hold an RSA key")
    return key


def load_ec2_certificate(path: Path) -> bytes:
    """EC2's bundling certificate (PEM), checked to be one."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ArchamiError(f"publish.ec2_certificate (--ec2-cert): cannot read {path}: {exc.strerror}") from None
    _load_public_key(pem)
    return pem


def load_signing_key(path: Path) -> rsa.RSAPrivateKey:
    """The RSA private key (PEM, unencrypted) that signs bundle manifests."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ArchamiError(f"publish.signing_key (--signing-key): cannot read {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:  # TypeError: the key is encrypted with a passphrase
        raise ArchamiError(f"publish.signing_key (--signing-key): {path}: not an unencrypted PEM key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ArchamiError(f"publish.signing_key (--signing-key): {path} is not an RSA key")
    return key


def _encrypt_for(key: rsa.RSAPublicKey, secret: bytes) -> str:
    return key.encrypt(secret, rsa_padding.PKCS1v15()).hex()


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _tar_stream(image: Path) -> Popen[bytes]:
    # GNU tar --sparse stores only the data extents: a 2 GiB image with 400 MB of data tars to ~400 MB.
    return spawn(
        [
            "tar",
            "--create",
            "--sparse",
            "--format=gnu",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--directory",
            str(image.parent),
            image.name,
        ],
        stdout=PIPE,
    )


def write_bundle(
    image: Path,
    out_dir: Path,
    *,
    name: str,
    account_id: str,
    architecture: str,
    ec2_certificate_pem: bytes,
    user_private_key: rsa.RSAPrivateKey | None = None,
    kernel_id: str | None = None,
) -> Bundle:
    """Bundle `image` into out_dir/NAME.part.NN + out_dir/NAME.manifest.xml.

    user_private_key signs the manifest and receives its own copy of the key; a fresh one is made (and
    saved as NAME.user-key.pem beside the bundle) when none is given.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ec2_key = _load_public_key(ec2_certificate_pem)
    if user_private_key is None:
        user_private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (out_dir / f"{name}.user-key.pem").write_bytes(
            user_private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    # ec2-ami-tools hands `openssl enc -K/-iv` hex strings and RSA-encrypts those hex strings: so do we.
    key_hex = os.urandom(16).hex()
    iv_hex = os.urandom(16).hex()
    encryptor = Cipher(algorithms.AES(bytes.fromhex(key_hex)), modes.CBC(bytes.fromhex(iv_hex))).encryptor()
    padder = padding.PKCS7(128).padder()
    gzip = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip container
    tar_sha1 = hashlib.sha1()

    parts: list[Path] = []
    part_digests: list[str] = []
    buffer = bytearray()

    def emit(data: bytes, final: bool = False) -> None:
        buffer.extend(data)
        while len(buffer) >= PART_SIZE or (final and buffer):
            chunk = bytes(buffer[:PART_SIZE])
            del buffer[:PART_SIZE]
            part = out_dir / f"{name}.part.{len(parts):02d}"
            part.write_bytes(chunk)
            parts.append(part)
            part_digests.append(hashlib.sha1(chunk).hexdigest())

    def encrypt(data: bytes) -> None:
        emit(encryptor.update(padder.update(data)))

    tar = _tar_stream(image)
    assert tar.stdout is not None
    while chunk := tar.stdout.read(CHUNK):
        tar_sha1.update(chunk)
        encrypt(gzip.compress(chunk))
    if tar.wait() != 0:
        raise ArchamiError(f"tar failed to archive {image} (exit {tar.returncode})")
    encrypt(gzip.flush())
    emit(encryptor.update(padder.finalize()) + encryptor.finalize(), final=True)

    bundled_size = sum(p.stat().st_size for p in parts)
    user_key = user_private_key.public_key()
    root = ET.Element("manifest")
    _sub(root, "version", MANIFEST_VERSION)
    bundler = _sub(root, "bundler")
    for tag, value in zip(("name", "version", "release"), BUNDLER, strict=True):
        _sub(bundler, tag, value)
    machine = _sub(root, "machine_configuration")
    _sub(machine, "architecture", architecture)
    mappings = _sub(machine, "block_device_mapping")
    for virtual, device in (("ami", "sda1"), ("root", "/dev/sda1")):
        mapping = _sub(mappings, "mapping")
        _sub(mapping, "virtual", virtual)
        _sub(mapping, "device", device)
    if kernel_id:
        _sub(machine, "kernel_id", kernel_id)
    img = _sub(root, "image")
    _sub(img, "name", name)
    _sub(img, "user", account_id)
    _sub(img, "type", "machine")
    _sub(img, "digest", tar_sha1.hexdigest(), algorithm="SHA1")
    _sub(img, "size", str(image.stat().st_size))
    _sub(img, "bundled_size", str(bundled_size))
    _sub(img, "ec2_encrypted_key", _encrypt_for(ec2_key, key_hex.encode()), algorithm="AES-128-CBC")
    _sub(img, "user_encrypted_key", _encrypt_for(user_key, key_hex.encode()), algorithm="AES-128-CBC")
    _sub(img, "ec2_encrypted_iv", _encrypt_for(ec2_key, iv_hex.encode()))
    _sub(img, "user_encrypted_iv", _encrypt_for(user_key, iv_hex.encode()))
    parts_el = _sub(img, "parts", count=str(len(parts)))
    for index, (part, digest) in enumerate(zip(parts, part_digests, strict=True)):
        part_el = _sub(parts_el, "part", index=str(index))
        _sub(part_el, "filename", part.name)
        _sub(part_el, "digest", digest, algorithm="SHA1")
    signed = ET.tostring(machine) + ET.tostring(img)
    signature = user_private_key.sign(signed, rsa_padding.PKCS1v15(), hashes.SHA1())
    _sub(root, "signature", signature.hex())

    manifest = out_dir / f"{name}.manifest.xml"
    manifest.write_bytes(b'<?xml version="1.0" ?>\n' + ET.tostring(root))
    return Bundle(out_dir, manifest, parts, image.stat().st_size, bundled_size)


# Reading a bundle back


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
    tar = spawn(["tar", "--extract", "--sparse", "--directory", str(out_dir)], stdin=PIPE)
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
