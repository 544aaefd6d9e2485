"""The RegisterImage request for the real Graviton build (examples/debian.toml, trixie-ebs-hvm-aarch64, built on
this machine), checked on the wire as botocore sent it: moto keeps only Name and Description."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_helpers import RequestRecorder
from moto_server import MotoServer

from archami.artifacts import BuildResult
from archami.aws.clients import Clients
from archami.aws.images import volume_size_gib
from archami.aws.publish import publish
from archami.config.publish import PublishSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_arm64_build_registers_as_an_arm64_uefi_ena_imdsv2_ami(
    arm64_build: BuildResult, tmp_path: Path, clients: Clients, moto: MotoServer, recorder: RequestRecorder
) -> None:
    m = arm64_build.manifest
    record = publish(
        arm64_build.out_dir, PublishSettings(regions=["us-west-2"], public=False), endpoint_url=moto.url,
        state_path=tmp_path / "publish-state.json", release_id="2026.12.01", clients=clients, poll=0.05,
    )
    (form,) = recorder.ec2_actions("RegisterImage")
    assert form["Name"] == "debian-trixie-ebs-hvm-aarch64-2026.12.01"
    assert form["Architecture"] == "arm64" == m.variant.ec2_architecture
    assert form["VirtualizationType"] == "hvm"
    assert form["BootMode"] == "uefi" == m.boot_mode  # no BIOS boot code on the disk: never legacy-bios
    assert form["EnaSupport"] == "true"  # Graviton's only network adapter; its driver is in the initramfs
    assert form["ImdsSupport"] == "v2.0"
    assert form["RootDeviceName"] == form["BlockDeviceMapping.1.DeviceName"] == m.root_device_name == "/dev/xvda"
    assert form["BlockDeviceMapping.1.Ebs.SnapshotId"] == record.regions["us-west-2"].snapshot_id
    assert form["BlockDeviceMapping.1.Ebs.VolumeSize"] == str(volume_size_gib(m.image_size)) == "2"
    assert form["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3"
    assert "KernelId" not in form and "ImageLocation" not in form
