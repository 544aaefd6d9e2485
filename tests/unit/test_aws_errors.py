"""AWS failures a user can act on reach the CLI as one-line ArchamiErrors (no AWS, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError, ProfileNotFound
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from archami.aws.bundle import load_ec2_certificate, load_signing_key
from archami.aws.clients import AwsSettings, Clients, resolve_regions
from archami.aws.errors import as_archami_errors
from archami.aws.published import latest_ami, prune
from archami.aws.state import PublishState, StateStore
from archami.errors import ArchamiError
from archami.release.policy import PrunePolicy

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens; no call may leave this machine anyway


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "RegisterImage"),
         "RegisterImage failed: UnauthorizedOperation: not allowed"),
        (EndpointConnectionError(endpoint_url=CLOSED), "AWS call failed: Could not connect"),
        (ProfileNotFound(profile="nope"), "AWS call failed: The config profile (nope) could not be found"),
        (S3UploadFailedError("Failed to upload image.part.00: AccessDenied"), "AWS call failed: Failed to upload"),
    ],
)
def test_aws_exceptions_become_one_line(raised: Exception, message: str) -> None:
    @as_archami_errors
    def call() -> None:
        raise raised

    with pytest.raises(ArchamiError) as caught:
        call()
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_entry_points_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials are looked for before anything is sent: the failure is found offline."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clients = Clients(AwsSettings(endpoint_url=CLOSED, max_attempts=1))
    for call in (
        lambda: resolve_regions(clients, "all", "eu-west-1"),
        lambda: prune(clients, ["eu-west-1"], policy=PrunePolicy(keep=1), dry_run=True),
        lambda: latest_ami("eu-west-1", "ebs-hvm-x86_64", family="debian", clients=clients),
    ):
        with pytest.raises(ArchamiError, match="no AWS credentials"):
            call()


def test_unreadable_state_file(tmp_path: Path) -> None:
    path = tmp_path / "publish-r1.state.json"
    path.write_text('{"release_id": "r1", "regions": ')  # cut short, as by a full disk
    fresh = PublishState(release_id="r1", family="f", variant_id="v", ami_name="f-v-r1", image_sha256="0",
                         source_region="eu-west-1", method="ebs-direct")
    with pytest.raises(ArchamiError, match="not a valid publish state"):
        StateStore.open(path, fresh)


def _certificate(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec2")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_bundle_certificate_and_key_files(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = tmp_path / "cert-ec2.pem"
    good.write_bytes(_certificate(rsa_key))
    assert load_ec2_certificate(good) == good.read_bytes()
    ec_cert = tmp_path / "ec.pem"
    ec_cert.write_bytes(_certificate(ec.generate_private_key(ec.SECP256R1())))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    for path, reason in ((tmp_path / "missing.pem", "cannot read"), (garbage, "not a PEM X.509"),
                         (ec_cert, "RSA key")):
        with pytest.raises(ArchamiError, match=rf"^publish\.ec2_certificate \(--ec2-cert\): .*{reason}"):
            load_ec2_certificate(path)

    key = tmp_path / "signing.pem"
    key.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    assert load_signing_key(key).public_key().public_numbers() == rsa_key.public_key().public_numbers()
    locked = tmp_path / "locked.pem"
    locked.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"secret")))
    for path, reason in ((locked, "not an unencrypted PEM key"), (good, "not an unencrypted PEM key"),
                         (tmp_path / "missing.pem", "cannot read")):
        with pytest.raises(ArchamiError, match=rf"^publish\.signing_key \(--signing-key\): .*{reason}"):
            load_signing_key(path)
