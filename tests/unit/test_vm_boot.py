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


def _arm64_image(tmp_path: Path) -> Path:
    """A small file with a manifest of the Debian example's Graviton variant beside it, as a build leaves it."""
    from archami.artifacts import MANIFEST_NAME, Manifest, write_json_atomic
    from archami.config import load_definition

    loaded = load_definition(Path(__file__).resolve().parents[2] / "examples" / "debian.toml")
    variant = next(v for v in loaded.variants if v.architecture == "aarch64")
    image = tmp_path / "image.raw"
    image.write_bytes(b"arm" * 1000)
    manifest = Manifest(
        archami_version="0", definition_name=variant.name, definition_path=str(loaded.path),
        definition_sha256=loaded.sha256, variant=variant, variant_id=variant.id, built_at="2026-12-01T00:00:00Z",
        build_seconds=1.0, kernel_version="6.12-cloud-arm64", boot_mode=variant.boot_mode, image_size=3000,
        used_bytes=4096, image_sha256="ab" * 32, packages=[], packages_sha256="cd" * 32,
    )
    write_json_atomic(tmp_path / MANIFEST_NAME, manifest)
    return image


def test_an_arm64_image_is_booted_as_aarch64_under_uefi(tmp_path: Path) -> None:
    import pytest

    from archami.errors import ArchamiError
    from archami.vm.boot import DEFAULT_TIMEOUTS, boot_test, default_firmware, image_facts

    facts = image_facts(_arm64_image(tmp_path))
    assert (facts.architecture, facts.boot_mode, facts.sha256) == ("aarch64", "uefi", "ab" * 32)
    assert default_firmware(facts.boot_mode) == "uefi" and default_firmware("uefi-preferred") == "bios"
    assert DEFAULT_TIMEOUTS["aarch64"] > DEFAULT_TIMEOUTS["x86_64"]
    # Asked for BIOS, it refuses before starting anything: a UEFI-only disk has no BIOS boot code.
    with pytest.raises(ArchamiError, match="UEFI only"):
        boot_test(tmp_path / "image.raw", "bios", report_dir=tmp_path)
    assert not list(tmp_path.glob("boot-test-*.json"))
