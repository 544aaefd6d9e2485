"""The SBOM of the real Debian build: valid CycloneDX 1.5 (the CycloneDX schema), one component per
installed package, licences as the image's own copyright files state them."""

from __future__ import annotations

import json
import subprocess

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from archami.artifacts import BuildResult
from archami.distro.licences import dep5_licences
from archami.image.sbom import SBOM_NAME

pytestmark = pytest.mark.integration


def test_sbom_of_the_debian_build(debian_build: BuildResult) -> None:
    text = (debian_build.out_dir / SBOM_NAME).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None
    sbom = json.loads(text)
    manifest = debian_build.manifest
    assert sbom["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": manifest.image_sha256}]
    versions = {c["name"]: PackageURL.from_string(c["purl"]).version for c in sbom["components"]}
    assert versions == {p.name: p.version for p in manifest.packages}
    with_licences = [c for c in sbom["components"] if c.get("licenses")]
    assert len(with_licences) > len(sbom["components"]) // 2  # most Debian packages have DEP-5 copyright files
    root = next(p.start for p in manifest.partitions if p.role == "root")
    copyright_text = subprocess.run(
        ["debugfs", "-R", "cat /usr/share/doc/openssh-client/copyright", f"{debian_build.image}?offset={root}"],
        capture_output=True, text=True, check=True).stdout
    ssh = next(c for c in sbom["components"] if c["name"] == "openssh-client")
    assert [entry["license"]["name"] for entry in ssh["licenses"]] == dep5_licences(copyright_text)
