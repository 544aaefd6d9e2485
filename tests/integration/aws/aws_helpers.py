"""Helpers for the AWS stage tests: small sparse build directories, request recorders, certificates."""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from archami.artifacts import AUDIT_REPORT_NAME, IMAGE_NAME, MANIFEST_NAME, AuditReport, Manifest, write_json_atomic
from archami.aws.upload import EBS_BLOCK_SIZE
from archami.bzimage import KernelFacts
from archami.config import load_definition
from archami.config.variant import Variant
from archami.image.pvgrub import PARAVIRTUAL_BOOT

REPO = Path(__file__).resolve().parents[3]
MIB = 1024**2


def debian_variant(**changes: Any) -> Variant:
    """The Debian example's stable variant, as release "bookworm" (the names these tests assert)."""
    loaded = load_definition(REPO / "examples" / "debian.toml")
    # The example's first variant as a bookworm one: the names these tests expect were made with bookworm.
    variant = loaded.variants[0].model_copy(update={"release": "bookworm"})
    assert variant.id == "bookworm-ebs-hvm-x86_64"
    return variant.model_copy(update=changes)


# What a paravirtual build's manifest records of its kernel: one pv-grub loads (xz), unless a test says otherwise.
PV_KERNEL = KernelFacts(path="/vmlinuz", release="6.1.0-test", version=(6, 1), protocol="2.15", bits=64,
                        compression="xz")


def write_sparse_image(path: Path, size: int, data_blocks: dict[int, bytes], zero_blocks: tuple[int, ...] = ()) -> None:
    """A sparse file: `data_blocks` (EBS block index -> bytes written at its start), `zero_blocks`
    allocated but all zero (they must not be uploaded), everything else a hole."""
    with path.open("wb") as f:
        f.truncate(size)
        for index, data in data_blocks.items():
            f.seek(index * EBS_BLOCK_SIZE)
            f.write(data)
        for index in zero_blocks:
            f.seek(index * EBS_BLOCK_SIZE)
            f.write(bytes(EBS_BLOCK_SIZE))


def make_build(
    out: Path,
    variant: Variant | None = None,
    *,
    size: int = 64 * MIB,
    data_blocks: dict[int, bytes] | None = None,
    zero_blocks: tuple[int, ...] = (5,),
    root_device_name: str | None = None,
    kernel: KernelFacts | None = None,
) -> Path:
    """A build directory like `archami build` writes: image.raw (sparse) + manifest.json."""
    variant = variant or debian_variant()
    build_dir = out / variant.id
    build_dir.mkdir(parents=True, exist_ok=True)
    if data_blocks is None:
        rng = random.Random(7)
        data_blocks = {
            0: rng.randbytes(4096),
            3: rng.randbytes(EBS_BLOCK_SIZE),
            4: rng.randbytes(100),
            60: rng.randbytes(EBS_BLOCK_SIZE + 10),
            127: rng.randbytes(EBS_BLOCK_SIZE),
        }
    image = build_dir / IMAGE_NAME
    write_sparse_image(image, size, data_blocks, zero_blocks)
    with image.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    manifest = Manifest(
        archami_version="0.1.0",
        definition_name=variant.name,
        definition_path="examples/debian.toml",
        definition_sha256="0" * 64,
        variant=variant,
        variant_id=variant.id,
        description=f"{variant.name} {variant.label} (test)",
        built_at="2026-11-25T00:00:00Z",
        build_seconds=1.0,
        kernel_version="6.1.0-test",
        boot_mode=variant.boot_mode,
        root_device_name=root_device_name or (
            "/dev/xvda" if variant.virtualization == "hvm" else PARAVIRTUAL_BOOT.root_device_name
        ),
        partition_scheme="gpt" if variant.virtualization == "hvm" else PARAVIRTUAL_BOOT.scheme,
        kernel=kernel or (PV_KERNEL if variant.virtualization == "paravirtual" else None),
        image_size=size,
        used_bytes=os.stat(image).st_blocks * 512,
        image_sha256=digest,
        packages=[],
        packages_sha256="0" * 64,
    )
    write_json_atomic(build_dir / MANIFEST_NAME, manifest)
    # The audit the build writes: publish checks image -> manifest -> audit before any AWS call.
    write_json_atomic(build_dir / AUDIT_REPORT_NAME, AuditReport(target=str(image), ok=True, image_sha256=digest))
    return build_dir


class RequestRecorder:
    """Every request as sent on the wire (botocore's before-send): exact parameters moto would drop."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []

    def __call__(self, request: Any, **kwargs: Any) -> None:
        body = request.body or b""
        if hasattr(body, "read"):  # streamed bodies (block uploads): not needed here
            body = b""
        self.requests.append((request.method, request.url, body if isinstance(body, bytes) else body.encode()))

    def ec2_actions(self, action: str) -> list[dict[str, str]]:
        """Form parameters of every EC2 query-protocol call of this action."""
        out = []
        for _, _, body in self.requests:
            form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
            if form.get("Action") == action:
                out.append(form)
        return out


def throwaway_certificate(directory: Path) -> tuple[Path, rsa.RSAPrivateKey]:
    """A self-signed RSA certificate standing in for the region's EC2 bundling certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec2-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = directory / "cert-ec2-test.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key
