"""The image's SBOM: a CycloneDX 1.5 JSON document (sbom.cdx.json beside manifest.json) listing every
installed package with its version, architecture, package URL and, where the package data records them,
licences. Reproducible like the image: its time is the build's SOURCE_DATE_EPOCH and its serial number is
derived from the image's sha256, so two equal images have equal SBOMs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from archami import __version__
from archami.artifacts import Manifest, PackageInfo

SBOM_NAME = "sbom.cdx.json"
SPEC_VERSION = "1.5"
_SERIAL_NAMESPACE = uuid.UUID("0b6f5a2e-6f0e-4f3c-9a57-3c1f1f3e2d40")  # archami's, for uuid5 serial numbers
# purl types and namespaces of the distros (package-url's registered types: deb, alpm).
_PURL = {"debian": ("deb", "debian"), "arch": ("alpm", "arch")}


def package_url(distro: str, release: str, package: PackageInfo) -> str:
    kind, namespace = _PURL[distro]
    qualifiers = {"arch": package.architecture} if package.architecture else {}
    if distro == "debian":
        qualifiers["distro"] = f"debian-{release}"
    return PackageURL(type=kind, namespace=namespace, name=package.name, version=package.version,
                      qualifiers=qualifiers).to_string()


def _component(distro: str, release: str, package: PackageInfo, licences: list[str]) -> dict[str, Any]:
    purl = package_url(distro, release, package)
    component: dict[str, Any] = {
        "type": "library", "bom-ref": purl, "name": package.name, "version": package.version, "purl": purl,
    }
    if licences:
        component["licenses"] = [{"license": {"name": name}} for name in licences]
    if package.architecture:
        component["properties"] = [{"name": "archami:package:architecture", "value": package.architecture}]
    return component


def make_sbom(manifest: Manifest, licences: dict[str, list[str]]) -> dict[str, Any]:
    """The CycloneDX document of one built image. Pure."""
    variant = manifest.variant
    epoch = manifest.source_date_epoch or 0
    components = [_component(variant.distro, variant.release, p, licences.get(p.name, []))
                  for p in sorted(manifest.packages, key=lambda p: (p.name, p.version, p.architecture))]
    image_ref = f"image:{manifest.variant_id}"
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, manifest.image_sha256)}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "archami", "version": __version__}]},
            "component": {
                "type": "operating-system", "bom-ref": image_ref,
                "name": f"{manifest.definition_name}-{manifest.variant_id}",
                "version": manifest.kernel_version, "description": manifest.description or manifest.definition_name,
                "hashes": [{"alg": "SHA-256", "content": manifest.image_sha256}],
                "properties": [
                    {"name": "archami:variant", "value": manifest.variant_id},
                    {"name": "archami:distro", "value": f"{variant.distro} {variant.release}"},
                    {"name": "archami:architecture", "value": variant.architecture},
                    {"name": "archami:definition_sha256", "value": manifest.definition_sha256},
                    {"name": "archami:packages_sha256", "value": manifest.packages_sha256},
                ],
            },
        },
        "components": components,
        "dependencies": [{"ref": image_ref, "dependsOn": [c["bom-ref"] for c in components]}],
    }


def write_sbom(path: Path, sbom: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(sbom, indent=2, sort_keys=True) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)
