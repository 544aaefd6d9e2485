"""Release streams: the machine-readable "what is the newest AMI" of an image family, modelled on Fedora
CoreOS's stream metadata (coreos/stream-metadata-go), readable without AWS credentials.

One stream per variant without its architecture (`bookworm-ebs-hvm`), so each architecture holds exactly
one image per region, as in CoreOS's format:

    {"stream": "bookworm-ebs-hvm", "metadata": {"last-modified": ..., "generator": "archami X"},
     "architectures": {"x86_64": {
        "artifacts": {"aws": {"release": ID, "formats": {"raw": {"disk": {"sha256": ..., "size": ...}}}}},
        "images": {"aws": {"regions": {"us-east-1": {"release": ID, "image": "ami-..."}}}},
        "archami": {"variant": ..., "family": ..., "kernel": ..., "boot_mode": ..., "sbom": ...}}}}

Beside each stream, `<stream>/releases.json` indexes every release of it (CoreOS's release index, with each
release's AMIs), so an AMI id of any release can be traced to its release, variant and image sha256. Both
are signed (release/stream_files.py). Building them is pure: records in, documents out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archami import __version__
from archami.release.records import ReleaseRecord, VariantRelease
from archami.release.sboms import SBOM_DIR

STREAM_DIR = "streams"
INDEX_NAME = "releases.json"


def stream_name(variant: VariantRelease) -> str:
    """The variant id without its architecture: the stream its images of every architecture belong to."""
    parts = [p for p in variant.variant.id.split("-") if p != variant.variant.architecture]
    return "-".join(parts) or variant.variant.id


def _regions(variant: VariantRelease, release_id: str) -> dict[str, dict[str, str]]:
    return {region: {"release": release_id, "image": ami.ami_id} for region, ami in sorted(variant.regions.items())}


def _arch_entry(record: ReleaseRecord, variant: VariantRelease) -> dict[str, Any]:
    return {
        "artifacts": {"aws": {"release": record.release_id, "formats": {"raw": {"disk": {
            "sha256": variant.image_sha256, "size": variant.image_size}}}}},
        "images": {"aws": {"regions": _regions(variant, record.release_id)}},
        "archami": {
            "variant": variant.variant.id, "family": record.definition_name, "kernel": variant.kernel_version,
            "boot_mode": variant.boot_mode, "ami_name": variant.ami_name, "packages_sha256": variant.packages_sha256,
            "sbom": f"../{SBOM_DIR}/{record.release_id}/{variant.variant.id}.cdx.json",
        },
    }


def build_streams(records: list[ReleaseRecord]) -> dict[str, dict[str, Any]]:
    """stream name -> stream document, from one family's records (newest first). Each architecture shows
    the newest release that published it; last-modified is that release's time, so equal records give
    equal documents."""
    streams: dict[str, dict[str, Any]] = {}
    for record in records:  # newest first: the first record naming a stream/arch wins
        for variant in record.ordered_variants():
            if not variant.regions:
                continue
            doc = streams.setdefault(stream_name(variant), {
                "stream": stream_name(variant),
                "metadata": {"last-modified": record.created_at, "generator": f"archami {__version__}"},
                "architectures": {},
            })
            doc["architectures"].setdefault(variant.variant.architecture, _arch_entry(record, variant))
    return streams


def build_index(records: list[ReleaseRecord], stream: str) -> dict[str, Any]:
    """The stream's release index: every release (newest first) with each architecture's AMIs."""
    releases = []
    for record in records:
        arches = {v.variant.architecture: {"variant": v.variant.id, "image_sha256": v.image_sha256,
                                           "images": {"aws": {"regions": _regions(v, record.release_id)}}}
                  for v in record.ordered_variants() if stream_name(v) == stream and v.regions}
        if arches:
            releases.append({"version": record.release_id, "metadata": f"../../releases/{record.release_id}.json",
                             "created_at": record.created_at, "architectures": arches})
    return {
        "stream": stream,
        "metadata": {"last-modified": releases[0]["created_at"] if releases else "",
                     "generator": f"archami {__version__}"},
        "releases": releases,
    }


@dataclass(frozen=True)
class AmiMatch:
    ami_id: str
    release_id: str
    variant_id: str
    architecture: str
    region: str
    image_sha256: str
    current: bool  # the stream's current image for its architecture


def find_ami(stream: dict[str, Any], index: dict[str, Any] | None, ami_id: str) -> AmiMatch | None:
    """Which release, variant, architecture, region and image sha256 an AMI id is (reverse lookup)."""
    for arch, entry in stream.get("architectures", {}).items():
        for region, image in entry.get("images", {}).get("aws", {}).get("regions", {}).items():
            if image.get("image") == ami_id:
                return AmiMatch(ami_id, image["release"], entry["archami"]["variant"], arch, region,
                                entry["artifacts"]["aws"]["formats"]["raw"]["disk"]["sha256"], True)
    for release in (index or {}).get("releases", []):
        for arch, entry in release.get("architectures", {}).items():
            for region, image in entry.get("images", {}).get("aws", {}).get("regions", {}).items():
                if image.get("image") == ami_id:
                    return AmiMatch(ami_id, release["version"], entry["variant"], arch, region,
                                    entry["image_sha256"], False)
    return None


def latest_in_stream(stream: dict[str, Any], region: str, architecture: str) -> tuple[str, str] | None:
    """(AMI id, release id) of the stream's current image in `region` for `architecture`."""
    entry = stream.get("architectures", {}).get(architecture)
    image = (entry or {}).get("images", {}).get("aws", {}).get("regions", {}).get(region)
    return (image["image"], image["release"]) if image else None
