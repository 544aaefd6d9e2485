"""boot_test's pure helpers: instance identities and the image digest."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from archami.vm.boot import image_sha256, random_instance


def test_random_instances_differ_and_look_like_ec2() -> None:
    first, second = random_instance(), random_instance()
    assert first.instance_id != second.instance_id
    assert re.fullmatch(r"i-0[0-9a-f]{16}", first.instance_id)
    address = first.local_ipv4
    assert first.hostname == f"ip-{address.replace('.', '-')}.ec2.internal"
    assert random_instance(region="eu-west-1").region == "eu-west-1"


def test_image_digest_is_computed_without_a_manifest(tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"disk" * 1000)
    assert image_sha256(image) == hashlib.sha256(b"disk" * 1000).hexdigest()


def test_image_digest_ignores_a_manifest_for_another_file(tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"disk" * 1000)
    (tmp_path / "manifest.json").write_text("{not json")
    assert image_sha256(image) == hashlib.sha256(b"disk" * 1000).hexdigest()
