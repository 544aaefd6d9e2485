"""The instance-store bundle: round trip through our decoder, the documented manifest schema, tampering."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlschema
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from archami.aws.bundle import PART_SIZE, parse_manifest, unbundle, verify_signature, write_bundle
from archami.errors import ArchamiError

SCHEMA = Path(__file__).parent / "aws_data" / "ec2_bundle_manifest_2007-10-10.xsd"


def throwaway_cert() -> tuple[bytes, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec2-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key


@pytest.fixture(scope="module")
def cert() -> tuple[bytes, rsa.RSAPrivateKey]:
    return throwaway_cert()


def sparse_image(path: Path) -> Path:
    """64 MiB apparent, ~24 MiB of incompressible data: several 10 MiB parts."""
    rng = random.Random(3)
    with path.open("wb") as f:
        f.truncate(64 * 1024**2)
        for offset in (0, 20 * 1024**2, 63 * 1024**2):
            f.seek(offset)
            f.write(rng.randbytes(8 * 1024**2 if offset < 63 * 1024**2 else 1024**2))
    return path


def test_round_trip_with_ec2_key_and_user_key(tmp_path: Path, cert: tuple[bytes, rsa.RSAPrivateKey]) -> None:
    pem, ec2_key = cert
    image = sparse_image(tmp_path / "image.raw")
    user_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bundle = write_bundle(
        image,
        tmp_path / "bundle",
        name="image",
        account_id="123456789012",
        architecture="x86_64",
        ec2_certificate_pem=pem,
        user_private_key=user_key,
        kernel_id="aki-88aa75e1",
    )
    assert [p.name for p in bundle.parts] == [f"image.part.{i:02d}" for i in range(len(bundle.parts))]
    assert len(bundle.parts) >= 2
    assert all(p.stat().st_size == PART_SIZE for p in bundle.parts[:-1])
    original = hashlib.sha256(image.read_bytes()).hexdigest()
    for as_ec2, key in ((True, ec2_key), (False, user_key)):
        restored = unbundle(bundle.manifest, key, tmp_path / f"out-{as_ec2}", as_ec2=as_ec2)
        assert restored.name == "image.raw"
        assert hashlib.sha256(restored.read_bytes()).hexdigest() == original
        assert restored.stat().st_blocks * 512 < 40 * 1024**2  # extracted sparse again
    manifest = parse_manifest(bundle.manifest)
    verify_signature(manifest, user_key.public_key())
    assert manifest.size == 64 * 1024**2 and manifest.kernel_id == "aki-88aa75e1"
    assert manifest.bundled_size == sum(p.stat().st_size for p in bundle.parts)


def test_manifest_matches_the_documented_schema(tmp_path: Path, cert: tuple[bytes, rsa.RSAPrivateKey]) -> None:
    image = sparse_image(tmp_path / "image.raw")
    bundle = write_bundle(
        image, tmp_path / "b", name="image", account_id="123456789012", architecture="i386", ec2_certificate_pem=cert[0]
    )
    xmlschema.XMLSchema(SCHEMA).validate(str(bundle.manifest))
    assert (tmp_path / "b" / "image.user-key.pem").exists()  # the generated bundler key is kept


def test_schema_rejects_a_manifest_without_ec2_key(tmp_path: Path, cert: tuple[bytes, rsa.RSAPrivateKey]) -> None:
    image = sparse_image(tmp_path / "image.raw")
    bundle = write_bundle(
        image,
        tmp_path / "b",
        name="image",
        account_id="123456789012",
        architecture="x86_64",
        ec2_certificate_pem=cert[0],
    )
    text = bundle.manifest.read_text()
    start, end = text.index("<ec2_encrypted_key"), text.index("</ec2_encrypted_key>") + len("</ec2_encrypted_key>")
    broken = tmp_path / "broken.xml"
    broken.write_text(text[:start] + text[end:])
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        xmlschema.XMLSchema(SCHEMA).validate(str(broken))


def test_a_corrupted_part_is_refused(tmp_path: Path, cert: tuple[bytes, rsa.RSAPrivateKey]) -> None:
    pem, ec2_key = cert
    image = sparse_image(tmp_path / "image.raw")
    bundle = write_bundle(
        image, tmp_path / "b", name="image", account_id="123456789012", architecture="x86_64", ec2_certificate_pem=pem
    )
    data = bytearray(bundle.parts[1].read_bytes())
    data[100] ^= 0xFF
    bundle.parts[1].write_bytes(bytes(data))
    with pytest.raises(ArchamiError, match=r"image.part.01: SHA-1 mismatch"):
        unbundle(bundle.manifest, ec2_key, tmp_path / "out")
