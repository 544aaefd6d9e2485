"""What a published release must look like, per region, from its record (pure), and the judging of
DescribeImages answers without an emulator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from archami.aws.verify import image_checks
from archami.release.records import load_records
from archami.release.verification import VerifyPolicy, expectations

RECORDS = Path(__file__).parent / "release_records" / "debian"


def test_one_expectation_per_region_and_ssm_only_for_the_current_release() -> None:
    newest, *older = load_records(RECORDS)
    wanted = expectations(newest, VerifyPolicy(current=True))
    assert [(e.region, e.ami_id) for e in wanted] == [
        (region, ami.ami_id) for v in newest.ordered_variants() for region, ami in sorted(v.regions.items())]
    first = wanted[0]
    assert first.architecture == "x86_64" and first.virtualization == "hvm" and first.root_device_name == "/dev/xvda"
    assert first.boot_mode == newest.variants[0].boot_mode and first.ena is True and first.imds == "v2.0"
    assert first.ssm_parameter == "/archami/debian/bookworm-ebs-hvm-x86_64/latest"
    assert first.tags["archami:release"] == newest.release_id
    assert first.deprecate_after == timedelta(days=365)
    assert all(e.ssm_parameter is None for e in expectations(older[0], VerifyPolicy(current=False)))


def _image(**fields: object) -> dict[str, object]:
    image: dict[str, object] = {
        "ImageId": "ami-1", "State": "available", "Architecture": "x86_64", "VirtualizationType": "hvm",
        "BootMode": "uefi-preferred", "EnaSupport": True, "ImdsSupport": "v2.0", "RootDeviceName": "/dev/xvda",
        "RootDeviceType": "ebs", "CreationDate": "2026-11-25T09:00:00.000Z",
        "DeprecationTime": "2027-11-25T09:01:00.000Z", "DeregistrationProtection": "disabled",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1"}}],
        "Tags": [{"Key": "archami:release", "Value": "2026.11.25.1"}, {"Key": "archami:name", "Value": "debian"},
                 {"Key": "archami:variant", "Value": "bookworm-ebs-hvm-x86_64"}],
    }
    image.update(fields)
    return image


def test_answers_are_judged_field_by_field() -> None:
    newest = load_records(RECORDS)[0]
    base = expectations(newest, VerifyPolicy())[0]
    expected = base.__class__(**{**base.__dict__, "ami_id": "ami-1", "snapshot_id": "snap-1"})
    statuses = {c.name: c.status for c in image_checks(expected, _image())}
    assert set(statuses.values()) == {"Correct"}
    assert {c.name: c.status for c in image_checks(expected, _image(DeprecationTime=None))}["deprecation"] == "Missing"
    wrong_day = _image(DeprecationTime="2026-12-25T09:00:00.000Z")
    assert {c.name: c.status for c in image_checks(expected, wrong_day)}["deprecation"] == "Incorrect"
    cooling = _image(DeregistrationProtection="disabled-until-2026-12-01T00:00:00Z")
    assert {c.name: c.status for c in image_checks(expected, cooling)}["deregistration protection"] == "Correct"
    other_snapshot = _image(BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-2"}}])
    assert {c.name: c.status for c in image_checks(expected, other_snapshot)}["root device"] == "Incorrect"
