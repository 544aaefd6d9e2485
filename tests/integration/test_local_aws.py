"""`local_aws()` is a fresh emulated account each time, even in a process that ran one before.

moto keeps its resources in module globals; without the reset a release test run after another one on the
same pytest worker saw that test's AMIs (and allocated `.1` release ids).
"""

from __future__ import annotations

import boto3
import pytest

from archami.release.emulator import local_aws

pytestmark = pytest.mark.integration


def _images(url: str) -> list[str]:
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=url)
    return [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]


def _register(url: str) -> str:
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=url)
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)
    snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"])
    image = ec2.register_image(
        Name="left-behind", RootDeviceName="/dev/xvda", Architecture="x86_64", VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot["SnapshotId"]}}],
    )
    return str(image["ImageId"])


def test_a_second_emulator_in_the_same_process_starts_empty() -> None:
    with local_aws() as first:
        image_id = _register(first)
        assert _images(first) == [image_id]
    with local_aws() as second:
        assert _images(second) == []
