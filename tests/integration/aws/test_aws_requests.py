"""The exact RegisterImage/CopyImage requests per kind of variant (moto keeps only Name and Description,
so the attributes are checked on the wire, as botocore sent them)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from aws_helpers import PV_KERNEL, RequestRecorder, debian_variant, make_build, throwaway_certificate
from moto_server import MotoServer

from archami.artifacts import MANIFEST_NAME, Manifest, read_json, write_json_atomic
from archami.aws.bundle import unbundle
from archami.aws.clients import Clients
from archami.aws.publish import publish
from archami.config.publish import PublishSettings
from archami.errors import ArchamiError
from archami.image.pvgrub import pv_grub_boot

pytestmark = pytest.mark.integration

COMMON = {"ImdsSupport": "v2.0", "TagSpecification.1.ResourceType": "image"}


def tags_sent(form: dict[str, str]) -> dict[str, str]:
    keys = {k: v for k, v in form.items() if k.startswith("TagSpecification.1.Tag.") and k.endswith(".Key")}
    return {v: form[k.replace(".Key", ".Value")] for k, v in keys.items()}


def register_request(recorder: RequestRecorder) -> dict[str, str]:
    sent = recorder.ec2_actions("RegisterImage")
    assert len(sent) == 1
    return sent[0]


def test_hvm_uefi_preferred_x86_64(
    tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder
) -> None:
    build = make_build(tmp_path, size=1536 * 1024**2)  # 1.5 GiB image -> a 2 GiB volume
    record = publish(
        build,
        PublishSettings(regions=["us-east-1", "eu-west-1"], public=False),
        endpoint_url=moto.url,
        release_id="2026.11.25",
        clients=clients,
        poll=0.05,
    )
    form = register_request(recorder)
    snapshot = record.regions["us-east-1"].snapshot_id
    assert {k: form[k] for k in COMMON} == COMMON
    assert form["Name"] == "debian-bookworm-ebs-hvm-x86_64-2026.11.25"
    assert form["Description"] == "debian bookworm ebs hvm x86_64 (test)"
    assert form["Architecture"] == "x86_64"
    assert form["VirtualizationType"] == "hvm"
    assert form["RootDeviceName"] == "/dev/xvda"
    assert form["BlockDeviceMapping.1.DeviceName"] == "/dev/xvda"
    assert form["BlockDeviceMapping.1.Ebs.SnapshotId"] == snapshot
    assert form["BlockDeviceMapping.1.Ebs.VolumeSize"] == "2"
    assert form["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3"
    assert form["BlockDeviceMapping.1.Ebs.DeleteOnTermination"] == "true"
    assert form["EnaSupport"] == "true"
    assert form["SriovNetSupport"] == "simple"
    assert form["BootMode"] == "uefi-preferred"
    assert form["TpmSupport"] == "v2.0"
    assert "KernelId" not in form and "ImageLocation" not in form
    assert tags_sent(form) == {
        "archami:name": "debian",
        "archami:release": "2026.11.25",
        "archami:variant": "bookworm-ebs-hvm-x86_64",
    }
    copy = recorder.ec2_actions("CopyImage")
    assert len(copy) == 1
    assert copy[0]["SourceRegion"] == "us-east-1"
    assert copy[0]["SourceImageId"] == record.regions["us-east-1"].ami_id
    assert copy[0]["Name"] == form["Name"] and copy[0]["CopyImageTags"] == "true"
    assert len(copy[0]["ClientToken"]) == 64


def test_hvm_aarch64(tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder) -> None:
    variant = debian_variant(architecture="aarch64", kernel_package="linux-image-cloud-arm64")
    build = make_build(tmp_path, variant)
    publish(
        build,
        PublishSettings(regions=["us-west-2"], public=False),
        endpoint_url=moto.url,
        release_id="r1",
        clients=clients,
        poll=0.05,
    )
    form = register_request(recorder)
    assert form["Name"] == "debian-bookworm-ebs-hvm-aarch64-r1"
    assert form["Architecture"] == "arm64"
    assert form["VirtualizationType"] == "hvm"
    assert form["BootMode"] == "uefi"
    assert form["TpmSupport"] == "v2.0"
    assert form["EnaSupport"] == "true" and form["SriovNetSupport"] == "simple"
    assert form["ImdsSupport"] == "v2.0"
    assert form["BlockDeviceMapping.1.Ebs.VolumeSize"] == "1"


def kernel_name(clients: Clients, region: str, aki: str) -> str:
    """The name of a pv-grub kernel by id (the emulator refuses ImageIds that are not ami-*: filter instead)."""
    images = clients.ec2(region).describe_images(Owners=["amazon"], Filters=[{"Name": "image-id", "Values": [aki]}])
    (image,) = images["Images"]
    name: str = image["Name"]
    return name


def test_paravirtual_uses_the_newest_pv_grub_aki_of_its_layout(
    tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder
) -> None:
    build = make_build(tmp_path, debian_variant(virtualization="paravirtual"))
    manifest = read_json(build / MANIFEST_NAME, Manifest)
    publish(
        build,
        PublishSettings(regions=["us-east-1", "sa-east-1"], public=False),
        endpoint_url=moto.url,
        release_id="r1",
        clients=clients,
        poll=0.05,
    )
    form = register_request(recorder)
    boot = pv_grub_boot(manifest.partition_scheme)
    assert manifest.partition_scheme == "none" and boot.aki_name == "pv-grub-hd0_*"
    assert form["VirtualizationType"] == "paravirtual"
    assert form["Architecture"] == "x86_64"
    # The AKI that reads the unpartitioned disk (hd0, not hd00), its newest release (1.05, not 1.04).
    assert fnmatch.fnmatch(kernel_name(clients, "us-east-1", form["KernelId"]), boot.aki_name)
    assert kernel_name(clients, "us-east-1", form["KernelId"]) == "pv-grub-hd0_1.05-x86_64.gz"
    assert form["RootDeviceName"] == boot.root_device_name == manifest.root_device_name == "/dev/sda1"
    assert form["BlockDeviceMapping.1.DeviceName"] == "/dev/sda1"
    assert form["ImdsSupport"] == "v2.0"
    for absent in ("EnaSupport", "SriovNetSupport", "BootMode", "TpmSupport"):
        assert absent not in form


def test_paravirtual_refusals_before_anything_is_uploaded(
    tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder
) -> None:
    def refused(build: Path, match: str, regions: list[str]) -> None:
        with pytest.raises(ArchamiError, match=match):
            publish(build, PublishSettings(regions=regions, public=False), endpoint_url=moto.url,
                    release_id="r1", clients=clients, poll=0.05)
        assert recorder.ec2_actions("RegisterImage") == []
        assert not [r for r in recorder.requests if "/snapshots" in r[1]]  # nothing uploaded

    zstd = PV_KERNEL.model_copy(update={"compression": "zstd", "release": "6.12.118+deb13-cloud-amd64"})
    refused(make_build(tmp_path / "zstd", debian_variant(virtualization="paravirtual"), kernel=zstd),
            r"is not published: paravirtual: /vmlinuz \(Linux 6\.12\.118\+deb13-cloud-amd64\) is zstd-compressed",
            ["us-east-1"])
    refused(make_build(tmp_path / "i686", debian_variant(virtualization="paravirtual", architecture="i686")),
            "Linux 5.9 removed 32-bit Xen PV guests", ["us-east-1"])
    clients.ec2("eu-west-1").deregister_image(ImageId="aki-b6aa75df")  # eu-west-1: only an older hd0 left
    clients.ec2("eu-west-1").deregister_image(ImageId="aki-c9aa75c0")
    refused(make_build(tmp_path / "no-aki", debian_variant(virtualization="paravirtual")),
            r"no Amazon pv-grub kernel \(AKI\) for x86_64 in eu-west-1", ["us-east-1", "eu-west-1"])


def test_instance_store_hvm_is_legacy_bios_without_tpm(
    tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder
) -> None:
    variant = debian_variant(root_device="instance-store")
    build = make_build(tmp_path, variant)
    # A manifest written before the variant knew better still says uefi-preferred: never sent for a bundle.
    manifest = read_json(build / MANIFEST_NAME, Manifest)
    write_json_atomic(build / MANIFEST_NAME, manifest.model_copy(update={"boot_mode": "uefi-preferred"}))
    cert, _ = throwaway_certificate(tmp_path)
    publish(
        build,
        PublishSettings(regions=["us-east-1"], bucket="archami-bundles", ec2_certificate=cert),
        endpoint_url=moto.url,
        release_id="r1",
        clients=clients,
        poll=0.05,
    )
    form = register_request(recorder)
    name = "debian-bookworm-instance-store-hvm-x86_64-r1"
    assert form["ImageLocation"] == f"archami-bundles/{name}/image.manifest.xml"
    assert form["VirtualizationType"] == "hvm" and form["Architecture"] == "x86_64"
    assert form["BootMode"] == "legacy-bios"  # instance-store root types are Xen: no UEFI, no NitroTPM
    assert "TpmSupport" not in form and "KernelId" not in form
    assert form["RootDeviceName"] == "/dev/sda1"
    assert not any(k.startswith("BlockDeviceMapping") for k in form)
    assert form["EnaSupport"] == "true" and form["SriovNetSupport"] == "simple"
    assert {k: form[k] for k in COMMON} == COMMON


def test_instance_store_registers_the_bundle_location(
    tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder
) -> None:
    variant = debian_variant(root_device="instance-store", virtualization="paravirtual")
    build = make_build(tmp_path, variant)
    cert, ec2_key = throwaway_certificate(tmp_path)
    record = publish(
        build,
        PublishSettings(regions=["us-east-1", "eu-west-1"], bucket="archami-bundles", ec2_certificate=cert),
        endpoint_url=moto.url,
        release_id="r1",
        clients=clients,
        poll=0.05,
    )
    name = "debian-bookworm-instance-store-paravirtual-x86_64-r1"
    form = register_request(recorder)
    assert form["ImageLocation"] == f"archami-bundles/{name}/image.manifest.xml"
    assert form["Name"] == name
    assert form["Architecture"] == "x86_64" and form["VirtualizationType"] == "paravirtual"
    assert kernel_name(clients, "us-east-1", form["KernelId"]) == "pv-grub-hd0_1.05-x86_64.gz"
    assert form["RootDeviceName"] == "/dev/sda1"
    assert not any(k.startswith("BlockDeviceMapping") for k in form)
    assert record.regions["us-east-1"].image_location == form["ImageLocation"]
    assert set(record.regions) == {"us-east-1", "eu-west-1"}
    # What EC2 would read from S3 decrypts, with EC2's key, back to the very image.
    s3 = clients.s3("us-east-1")
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="archami-bundles", Prefix=f"{name}/")["Contents"]]
    assert f"{name}/image.manifest.xml" in keys and f"{name}/image.part.00" in keys
    for key in keys:
        s3.download_file("archami-bundles", key, str(fetched / key.split("/")[-1]))
    restored = unbundle(fetched / "image.manifest.xml", ec2_key, tmp_path / "restored")
    assert restored.read_bytes() == (build / "image.raw").read_bytes()
