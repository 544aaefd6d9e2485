"""A build directory is published only when its image, manifest and audit agree (no AWS needed to check)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from archami.artifacts import AUDIT_REPORT_NAME, IMAGE_NAME, MANIFEST_NAME, AuditReport, Manifest, write_json_atomic
from archami.config import load_definition
from archami.errors import ArchamiError
from archami.image.integrity import verify_build

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "debian.toml"


def make_build(out: Path, size: int = 3 * 1024 * 1024) -> Path:
    """A sparse image with some data, its manifest and a passing audit of it, as `archami build` leaves them."""
    out.mkdir()
    image = out / IMAGE_NAME
    with image.open("wb") as handle:
        handle.truncate(size)
        handle.seek(1024 * 1024)
        handle.write(os.urandom(5000))
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    variant = load_definition(EXAMPLE).variants[0]
    manifest = Manifest(
        archami_version="0", definition_name=variant.name, definition_path=str(EXAMPLE), definition_sha256="0" * 64,
        variant=variant, variant_id=variant.id, built_at="2026-12-01T00:00:00Z", build_seconds=1.0,
        kernel_version="6.1.0", boot_mode=variant.boot_mode, image_size=size, used_bytes=8192,
        image_sha256=digest, packages=[], packages_sha256="0" * 64,
    )
    write_json_atomic(out / MANIFEST_NAME, manifest)
    write_json_atomic(out / AUDIT_REPORT_NAME, AuditReport(target=str(image), ok=True, image_sha256=digest))
    return out


def test_a_consistent_build_passes(tmp_path: Path) -> None:
    image, manifest = verify_build(make_build(tmp_path / "b"))
    assert image.name == IMAGE_NAME and manifest.variant_id == load_definition(EXAMPLE).variants[0].id


def _flip_a_byte(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(1024 * 1024 + 10)
        byte = handle.read(1)
        handle.seek(1024 * 1024 + 10)
        handle.write(bytes([byte[0] ^ 1]))


def _edit_json(path: Path, **changes: object) -> None:
    import json

    data = json.loads(path.read_text())
    for key, value in changes.items():
        data[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("damage,words", [
    (lambda b: _flip_a_byte(b / IMAGE_NAME), "the image changed after it was built"),
    (lambda b: os.truncate(b / IMAGE_NAME, 1024 * 1024), "the manifest says"),
    (lambda b: (b / AUDIT_REPORT_NAME).unlink(), "no audit.json"),
    (lambda b: (b / MANIFEST_NAME).unlink(), "no manifest.json"),
    (lambda b: _edit_json(b / AUDIT_REPORT_NAME, image_sha256="0" * 64), "the audit is of image 0000"),
    (lambda b: _edit_json(b / AUDIT_REPORT_NAME, image_sha256=None), "does not record which image"),
    (lambda b: _edit_json(b / AUDIT_REPORT_NAME, ok=False), "failed its audit"),
    (lambda b: _edit_json(b / MANIFEST_NAME, variant_id="../../x"), "is not its variant's id"),
    (lambda b: _edit_json(b / MANIFEST_NAME, image_size="big"), "is not a valid manifest: field image_size"),
    (lambda b: (b / MANIFEST_NAME).write_text("{"), "is not a valid manifest: not JSON"),
    (lambda b: (b / AUDIT_REPORT_NAME).write_text("[" * 100000), "is not a valid audit report"),
], ids=["image changed", "image truncated", "no audit", "no manifest", "audit of another image",
        "audit without digest", "audit failed", "variant id", "manifest field", "manifest not JSON", "deep JSON"])
def test_a_damaged_build_is_refused_before_publishing(tmp_path: Path, damage: object, words: str) -> None:
    build = make_build(tmp_path / "b")
    damage(build)  # type: ignore[operator]
    with pytest.raises(ArchamiError, match=words):
        verify_build(build)
