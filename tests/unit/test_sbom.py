"""The image SBOM is CycloneDX 1.5, checked by the CycloneDX project's own JSON schema (the schema files that
cyclonedx-python-lib ships, applied by its strict validator), with package URLs that parse back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from archami.artifacts import Manifest, PackageInfo
from archami.config import load_definition
from archami.distro.licences import dep5_licences, pacman_licences
from archami.image.sbom import make_sbom, package_url

REPO = Path(__file__).resolve().parents[2]
PACKAGES = [
    PackageInfo(name="openssh-server", version="1:9.2p1-2+deb12u3", architecture="amd64"),
    PackageInfo(name="libc6", version="2.36-9+deb12u9", architecture="amd64"),
    PackageInfo(name="tzdata", version="2024a-0+deb12u1", architecture="all"),
]


def _manifest(example: str, packages: list[PackageInfo]) -> Manifest:
    loaded = load_definition(REPO / "examples" / example)
    variant = loaded.variants[0]
    return Manifest(
        archami_version="0", definition_name=loaded.definition.name, definition_path="x", definition_sha256="d" * 64,
        variant=variant, variant_id=variant.id, built_at="2026-12-01T00:00:00Z", build_seconds=1,
        kernel_version="6.1.0-27-cloud-amd64", boot_mode=variant.boot_mode, image_size=1, used_bytes=1,
        image_sha256="a" * 64, packages=packages, packages_sha256="p" * 64, source_date_epoch=1_795_781_544,
    )


def sbom_release(sbom: dict[str, object]) -> str:
    """The release the SBOM says the image is of ("debian trixie" -> "trixie")."""
    component = sbom["metadata"]["component"]  # type: ignore[index]
    return next(p["value"] for p in component["properties"] if p["name"] == "archami:distro").split()[1]


def validate(document: dict[str, object]) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(document))
    assert error is None, str(error).splitlines()[0]


def test_debian_sbom_is_valid_cyclonedx_with_purls_and_licences() -> None:
    licences = {"openssh-server": ["BSD-3-clause", "BSD-2-clause"]}
    sbom = make_sbom(_manifest("debian.toml", PACKAGES), licences)
    validate(sbom)
    components = {c["name"]: c for c in sbom["components"]}  # type: ignore[attr-defined]
    assert set(components) == {p.name for p in PACKAGES}
    for package in PACKAGES:
        purl = PackageURL.from_string(components[package.name]["purl"])
        assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", package.name, package.version)
        assert purl.qualifiers == {"arch": package.architecture, "distro": f"debian-{sbom_release(sbom)}"}
    assert [lic["license"]["name"] for lic in components["openssh-server"]["licenses"]] == licences["openssh-server"]
    assert "licenses" not in components["libc6"]
    assert sbom["metadata"]["timestamp"] == "2026-11-27T12:12:24Z"  # type: ignore[index]


def test_arch_sbom_uses_alpm_purls() -> None:
    packages = [PackageInfo(name="linux", version="6.12.1.arch1-1", architecture="x86_64")]
    sbom = make_sbom(_manifest("arch.toml", packages), {"linux": ["GPL-2.0-only"]})
    validate(sbom)
    assert package_url("arch", "rolling", packages[0]) == "pkg:alpm/arch/linux@6.12.1.arch1-1?arch=x86_64"


def test_the_schema_check_is_real() -> None:
    sbom = make_sbom(_manifest("debian.toml", PACKAGES), {})
    sbom["components"][0]["type"] = "debian-package"  # type: ignore[index]
    with pytest.raises(AssertionError):
        validate(sbom)


def test_equal_images_have_equal_sboms() -> None:
    a = make_sbom(_manifest("debian.toml", PACKAGES), {})
    b = make_sbom(_manifest("debian.toml", list(reversed(PACKAGES))), {})
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_dep5_licences_and_free_form_files() -> None:
    text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n"
            "Files: src/*\nCopyright: someone\nLicense: MIT\n\n"
            "Files: *\nCopyright: 2020 me\nLicense: GPL-2+\n This program is free software\n\n"
            "License: GPL-2+\n full text\n")
    assert dep5_licences(text) == ["GPL-2+", "MIT"]
    assert dep5_licences("This package was debianized by someone.\nLicense: GPL\n") == []


def test_pacman_licences(tmp_path: Path) -> None:
    desc = tmp_path / "var/lib/pacman/local/zlib-1:1.3.1-2/desc"
    desc.parent.mkdir(parents=True)
    desc.write_text("%NAME%\nzlib\n\n%VERSION%\n1:1.3.1-2\n\n%LICENSE%\nZlib\n\n%ARCH%\nx86_64\n")
    assert pacman_licences(tmp_path) == {"zlib": ["Zlib"]}
