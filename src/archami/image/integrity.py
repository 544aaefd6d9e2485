"""Integrity of a build directory before it is published: the image is the one the manifest describes, and
the manifest's image is the one that passed its audit. Checked before any AWS call, so a corrupted,
truncated, swapped or unaudited image never becomes an AMI.

    image.raw     --sha256-->  manifest.json (image_sha256, image_size)
    manifest.json --sha256-->  audit.json (image_sha256, ok)

Reads only the build directory (no AWS, no tools): `verify_build` is what `publish` calls first.
"""

from __future__ import annotations

import re
from pathlib import Path

from archami.artifacts import AUDIT_REPORT_NAME, IMAGE_NAME, MANIFEST_NAME, AuditReport, Manifest, read_json
from archami.boundedio import check_regular_file
from archami.errors import ArchamiError
from archami.image.manifest import sparse_sha256

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FAMILY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class IntegrityError(ArchamiError):
    """A build directory is not what its manifest and audit say it is."""

    exit_code = 2


def verify_manifest(manifest: Manifest, where: Path) -> None:
    """The manifest names itself consistently (its values become AMI names and tags)."""
    if manifest.variant_id != manifest.variant.id:
        raise IntegrityError(f"{where}: variant_id {manifest.variant_id!r} is not its variant's id "
                             f"{manifest.variant.id!r}")
    if not _FAMILY.fullmatch(manifest.definition_name) or manifest.definition_name != manifest.variant.name:
        raise IntegrityError(f"{where}: definition_name {manifest.definition_name!r} is not a valid image name "
                             "or differs from the variant's")
    if not _SHA256.fullmatch(manifest.image_sha256):
        raise IntegrityError(f"{where}: image_sha256 is not a sha256 digest")


def verify_audit(audit: AuditReport, manifest: Manifest, where: Path) -> None:
    """The audit passed, and it audited this manifest's image."""
    if not audit.ok or audit.findings:
        shown = "; ".join(f"{f.rule} {f.path}" for f in audit.findings[:3])
        raise IntegrityError(f"{where}: the image failed its audit ({len(audit.findings)} finding(s): {shown})")
    if audit.image_sha256 is None:
        raise IntegrityError(f"{where}: the audit does not record which image it audited (made by an older "
                             "archami): rebuild the image")
    if audit.image_sha256 != manifest.image_sha256:
        raise IntegrityError(f"{where}: the audit is of image {audit.image_sha256[:16]}..., not the manifest's "
                             f"{manifest.image_sha256[:16]}...")


def verify_build(build_dir: Path, *, hash_image: bool = True) -> tuple[Path, Manifest]:
    """(image, manifest) of a build directory whose image, manifest and audit agree; IntegrityError (or the
    artifact reader's error) naming the file and what is wrong otherwise."""
    if not build_dir.is_dir():
        raise IntegrityError(f"{build_dir}: not a build directory")
    manifest_path, audit_path = build_dir / MANIFEST_NAME, build_dir / AUDIT_REPORT_NAME
    image = build_dir / IMAGE_NAME
    for path in (manifest_path, image, audit_path):
        if not path.exists():
            raise IntegrityError(f"{build_dir}: no {path.name}; run `archami build` first")
    manifest = read_json(manifest_path, Manifest)
    verify_manifest(manifest, manifest_path)
    verify_audit(read_json(audit_path, AuditReport), manifest, audit_path)
    size = check_regular_file(image, "image").stat().st_size
    if size != manifest.image_size:
        raise IntegrityError(f"{image}: {size} bytes, the manifest says {manifest.image_size}")
    if hash_image:
        digest = sparse_sha256(image)
        if digest != manifest.image_sha256:
            raise IntegrityError(f"{image}: sha256 {digest[:16]}... differs from the manifest's "
                                 f"{manifest.image_sha256[:16]}...: the image changed after it was built")
    return image, manifest
