"""Release streams from the sample records: CoreOS-shaped, signed with a real gpg key, verified, a tampered
or foreign-signed copy refused, AMI ids traced to their release, and `archami latest` from a stream served
on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archami.cli import app
from archami.errors import ArchamiError
from archami.pacman.gpg import Gpg
from archami.release.records import load_records
from archami.release.stream import build_streams, find_ami, latest_in_stream
from archami.release.stream_files import WrittenStreams, load_verified, release_key, write_streams

RECORDS = Path(__file__).parent / "release_records" / "debian"
runner = CliRunner()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> WrittenStreams:
    base = tmp_path_factory.mktemp("streams")
    gpg, fingerprint = release_key(base / "gnupg", None)  # a new ed25519 release key
    with gpg:
        return write_streams(load_records(RECORDS), base / "site", gpg, fingerprint)


def test_streams_follow_the_coreos_layout() -> None:
    records = load_records(RECORDS)
    streams = build_streams(records)
    assert sorted(streams) == ["bookworm-ebs-hvm", "trixie-ebs-hvm"]
    newest = records[0]
    bookworm = streams["bookworm-ebs-hvm"]
    assert bookworm["stream"] == "bookworm-ebs-hvm" and bookworm["metadata"]["last-modified"] == newest.created_at
    x86 = bookworm["architectures"]["x86_64"]
    variant = newest.variant("bookworm-ebs-hvm-x86_64")
    assert variant is not None
    assert x86["images"]["aws"]["regions"] == {
        region: {"release": newest.release_id, "image": ami.ami_id} for region, ami in variant.regions.items()}
    assert x86["artifacts"]["aws"]["release"] == newest.release_id
    assert x86["artifacts"]["aws"]["formats"]["raw"]["disk"]["sha256"] == variant.image_sha256
    # trixie is not in the newest release: its stream stays at the release that last published it
    older = next(r for r in records if r.variant("trixie-ebs-hvm-x86_64"))
    assert streams["trixie-ebs-hvm"]["architectures"]["x86_64"]["artifacts"]["aws"]["release"] == older.release_id
    region, ami = next(iter(variant.regions.items()))
    assert latest_in_stream(bookworm, region, "x86_64") == (ami.ami_id, newest.release_id)


def test_signed_stream_verifies_with_the_release_key(written: WrittenStreams) -> None:
    stream = written.directory / "bookworm-ebs-hvm.json"
    verified = load_verified(str(stream), [written.public_key])
    assert verified.signer == written.fingerprint
    assert verified.index is not None and len(verified.index["releases"]) == 3
    assert verified.document == json.loads(stream.read_text())


def test_tampered_copy_is_refused(written: WrittenStreams, tmp_path: Path) -> None:
    copy = tmp_path / "bookworm-ebs-hvm.json"
    shutil.copyfile(written.directory / "bookworm-ebs-hvm.json", copy)
    shutil.copyfile(written.directory / "bookworm-ebs-hvm.json.sig", tmp_path / "bookworm-ebs-hvm.json.sig")
    load_verified(str(copy), [written.public_key], with_index=False)  # the untouched copy is fine
    document = json.loads(copy.read_text())
    regions = document["architectures"]["x86_64"]["images"]["aws"]["regions"]
    regions["us-east-1"]["image"] = "ami-0123456789abcdef0"  # someone else's AMI
    copy.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    with pytest.raises(ArchamiError, match="does not verify"):
        load_verified(str(copy), [written.public_key], with_index=False)
    (tmp_path / "bookworm-ebs-hvm.json.sig").unlink()
    with pytest.raises(ArchamiError, match="no signature"):
        load_verified(str(copy), [written.public_key], with_index=False)


def test_a_stream_signed_by_another_key_is_refused(written: WrittenStreams, tmp_path: Path) -> None:
    with Gpg(tmp_path / "other") as other:
        fingerprint = other.generate_key("someone else <other@archami.invalid>")
        copy = tmp_path / "bookworm-ebs-hvm.json"
        shutil.copyfile(written.directory / "bookworm-ebs-hvm.json", copy)
        other.sign_detached(copy, fingerprint)
    with pytest.raises(ArchamiError, match="not a trusted key"):
        load_verified(str(copy), [written.public_key], with_index=False)


def test_reverse_lookup_of_current_and_older_amis(written: WrittenStreams) -> None:
    records = load_records(RECORDS)
    verified = load_verified(str(written.directory / "bookworm-ebs-hvm.json"), [written.public_key])
    for record in records:
        variant = record.variant("bookworm-ebs-hvm-x86_64")
        assert variant is not None
        for region, ami in variant.regions.items():
            match = find_ami(verified.document, verified.index, ami.ami_id)
            assert match is not None
            assert (match.release_id, match.variant_id, match.region, match.image_sha256) == (
                record.release_id, "bookworm-ebs-hvm-x86_64", region, variant.image_sha256)
            assert match.current == (record is records[0])
    assert find_ami(verified.document, verified.index, "ami-00000000000000000") is None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(written: WrittenStreams) -> Iterator[str]:
    """The site served over HTTP on 127.0.0.1, as a web server would publish it."""
    handler = functools.partial(_QuietHandler, directory=str(written.directory.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/streams"
    server.shutdown()
    server.server_close()


def test_cli_verify_and_latest_over_http(written: WrittenStreams, served: str) -> None:
    newest = load_records(RECORDS)[0]
    variant = newest.variant("bookworm-ebs-hvm-x86_64")
    assert variant is not None
    ami = variant.regions["eu-central-1"].ami_id
    url = f"{served}/bookworm-ebs-hvm.json"
    result = runner.invoke(app, ["verify", url, "--key", str(written.public_key), "--ami", ami, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["signer"] == written.fingerprint and report["index_verified"]
    assert report["ami"]["release_id"] == newest.release_id and report["ami"]["region"] == "eu-central-1"
    result = runner.invoke(app, ["latest", "--stream", url, "--key", str(written.public_key),
                                 "--region", "eu-central-1", "--variant", "bookworm-ebs-hvm-x86_64", "--json"])
    assert result.exit_code == 0, result.output
    latest = json.loads(result.output)
    assert (latest["ami_id"], latest["release_id"], latest["verified"]) == (ami, newest.release_id, True)
    missing = runner.invoke(app, ["verify", url, "--key", str(written.public_key), "--ami", "ami-00000000000000000"])
    assert missing.exit_code == 1
