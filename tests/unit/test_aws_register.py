"""RegisterImage parameters per variant kind (pure: no AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archami.artifacts import Manifest
from archami.aws.images import register_params
from archami.config import load_definition
from archami.config.variant import Variant
from archami.errors import ArchamiError

REPO = Path(__file__).resolve().parents[2]
TAGS = {"archami:release": "r1"}


def manifest(**changes: object) -> Manifest:
    loaded = load_definition(REPO / "examples" / "debian.toml")
    variant: Variant = loaded.variants[0].model_copy(update=changes)
    return Manifest(
        archami_version="0",
        definition_name="debian",
        definition_path="x",
        definition_sha256="0",
        variant=variant,
        variant_id=variant.id,
        built_at="2026-11-25T00:00:00Z",
        build_seconds=0,
        kernel_version="6.1",
        boot_mode=variant.boot_mode,
        image_size=2 * 1024**3 + 1,
        used_bytes=1,
        image_sha256="0",
        packages=[],
        packages_sha256="0",
    )


def test_hvm_x86_64_ebs() -> None:
    p = register_params(manifest(), ami_name="n", tags=TAGS, snapshot_id="snap-1")
    assert p["Architecture"] == "x86_64" and p["VirtualizationType"] == "hvm"
    assert p["BootMode"] == "uefi-preferred" and p["TpmSupport"] == "v2.0" and p["ImdsSupport"] == "v2.0"
    assert p["EnaSupport"] is True and p["SriovNetSupport"] == "simple"
    assert p["BlockDeviceMappings"][0]["Ebs"] == {
        "SnapshotId": "snap-1",
        "VolumeSize": 3,
        "VolumeType": "gp3",
        "DeleteOnTermination": True,
    }
    assert p["TagSpecifications"] == [{"ResourceType": "image", "Tags": [{"Key": "archami:release", "Value": "r1"}]}]


def test_paravirtual_needs_a_kernel_and_gets_no_hvm_attributes() -> None:
    m = manifest(virtualization="paravirtual")
    with pytest.raises(ArchamiError, match="pv-grub"):
        register_params(m, ami_name="n", tags=TAGS, snapshot_id="snap-1")
    p = register_params(m, ami_name="n", tags=TAGS, snapshot_id="snap-1", kernel_id="aki-1")
    assert p["KernelId"] == "aki-1" and p["VirtualizationType"] == "paravirtual"
    assert not {"EnaSupport", "SriovNetSupport", "BootMode", "TpmSupport"} & set(p)


def test_instance_store_uses_image_location() -> None:
    m = manifest(root_device="instance-store", architecture="i686", virtualization="paravirtual")
    p = register_params(m, ami_name="n", tags=TAGS, image_location="b/n/image.manifest.xml", kernel_id="aki-2")
    assert p["ImageLocation"] == "b/n/image.manifest.xml" and "BlockDeviceMappings" not in p
    assert p["Architecture"] == "i386" and p["RootDeviceName"] == "/dev/sda1"
    with pytest.raises(ValueError):
        register_params(m, ami_name="n", tags=TAGS, image_location="x", snapshot_id="snap-1", kernel_id="aki-2")


def test_instance_store_hvm_is_bios_only_even_from_an_older_manifest() -> None:
    m = manifest(root_device="instance-store")
    assert m.variant.boot_mode == "legacy-bios"
    for stale in (m, m.model_copy(update={"boot_mode": "uefi-preferred"})):
        p = register_params(stale, ami_name="n", tags=TAGS, image_location="b/n/image.manifest.xml")
        assert p["BootMode"] == "legacy-bios" and "TpmSupport" not in p
        assert p["VirtualizationType"] == "hvm" and p["EnaSupport"] is True
