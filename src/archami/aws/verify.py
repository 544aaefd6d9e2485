"""Post-publish verification: re-read what AWS holds for every region of a release and compare it with
what was meant, attribute by attribute (like Bottlerocket's validate-ami / validate-ssm, but complete).

Each check is Correct, Incorrect (AWS holds another value), Missing (AWS holds none, or the image is gone)
or Unreachable (the region could not be asked). The calls are read-only: DescribeImages,
DescribeImageAttribute(launchPermission), DescribeSnapshotAttribute(createVolumePermission), GetParameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient

Status = Literal["Correct", "Incorrect", "Missing", "Unreachable"]
CHECKS = (
    "state", "architecture", "virtualization", "boot mode", "ena", "imds", "root device", "launch permission",
    "snapshot permission", "deprecation", "deregistration protection", "tags", "ssm parameter",
)
# What moto 5 (the local emulator) does with each attribute it cannot give back: its answers for these are no
# evidence either way, so `--accept-unverified moto` records them as unverified with these reasons.
MOTO_UNKEPT = {
    "architecture": "moto keeps no Architecture from RegisterImage (it answers none)",
    "virtualization": "moto keeps no VirtualizationType from RegisterImage (it answers none)",
    "boot mode": "moto keeps no BootMode from RegisterImage (it answers its own default, uefi)",
    "ena": "moto keeps no EnaSupport from RegisterImage (it answers none)",
    "imds": "moto keeps no ImdsSupport from RegisterImage (it answers none)",
    "root device": "moto maps a snapshot of its own as a /dev/sda1 'standard' root instead of the registered one",
    "deprecation": "moto does not implement EnableImageDeprecation (it answers no DeprecationTime)",
    "deregistration protection": "moto does not implement EnableImageDeregistrationProtection (it answers none)",
}
ENDPOINT_PROFILES = {"moto": MOTO_UNKEPT}
_NOT_FOUND = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed")
_DEPRECATION_SLACK = timedelta(days=1)  # copies are made minutes later; EC2 rounds the time to the minute


@dataclass(frozen=True)
class ImageExpectation:
    """What one region's AMI of a release must be."""

    region: str
    ami_id: str
    architecture: str  # EC2's spelling: x86_64, i386, arm64
    virtualization: str  # hvm, paravirtual
    boot_mode: str | None  # None: paravirtual (no firmware)
    ena: bool | None  # None: not required either way
    root_device_name: str
    root_device_type: str  # ebs, instance-store
    snapshot_id: str | None  # the root volume's snapshot, when known
    public: bool
    tags: dict[str, str]
    ssm_parameter: str | None = None  # a parameter that must hold this AMI id (the current release only)
    deprecate_after: timedelta | None = None  # DeprecationTime must be about CreationDate + this...
    deprecate_at: datetime | None = None  # ...or about this fixed time (neither: no deprecation)
    deregistration_protection: bool = False
    imds: str = "v2.0"
    shared_with: tuple[str, ...] = ()  # launch permissions besides "all": account ids, organization (unit) ARNs


@dataclass(frozen=True)
class Check:
    region: str
    ami_id: str
    name: str
    status: Status
    expected: str = ""
    actual: str = ""


@dataclass
class RegionReport:
    region: str
    ami_id: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status == "Correct" for c in self.checks)


def _check(exp: ImageExpectation, name: str, expected: object, actual: object) -> Check:
    shown_expected = "" if expected is None else str(expected)
    if actual is None or actual == "":
        return Check(exp.region, exp.ami_id, name, "Missing", shown_expected, "")
    status: Status = "Correct" if actual == expected else "Incorrect"
    return Check(exp.region, exp.ami_id, name, status, shown_expected, str(actual))


def _all(exp: ImageExpectation, status: Status, detail: str) -> list[Check]:
    return [Check(exp.region, exp.ami_id, name, status, "", detail) for name in CHECKS]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def deprecation_check(exp: ImageExpectation, image: dict[str, Any]) -> Check:
    deprecation = _parse_time(image.get("DeprecationTime"))
    if exp.deprecate_after is None and exp.deprecate_at is None:
        return _check(exp, "deprecation", "none", "none" if deprecation is None else deprecation.isoformat())
    created = _parse_time(image.get("CreationDate"))
    target: datetime | None
    if exp.deprecate_at is not None:
        wanted, target = exp.deprecate_at.strftime("%Y-%m-%dT%H:%M:%SZ"), exp.deprecate_at
    else:
        assert exp.deprecate_after is not None
        wanted = f"CreationDate + {exp.deprecate_after.days} days"
        target = created + exp.deprecate_after if created else None
    if deprecation is None:
        return Check(exp.region, exp.ami_id, "deprecation", "Missing", wanted, "")
    if target is None or created is None:
        return Check(exp.region, exp.ami_id, "deprecation", "Incorrect", wanted, "no CreationDate to compare with")
    off = abs(deprecation - target)
    status: Status = "Correct" if off <= _DEPRECATION_SLACK else "Incorrect"
    return Check(exp.region, exp.ami_id, "deprecation", status, wanted,
                 f"{deprecation.strftime('%Y-%m-%dT%H:%M:%SZ')} (CreationDate + {(deprecation - created).days} days)")


def _root_device(exp: ImageExpectation, image: dict[str, Any]) -> Check:
    mapping = next((m for m in image.get("BlockDeviceMappings", []) if m.get("DeviceName") == exp.root_device_name),
                   None)
    snapshot = (mapping or {}).get("Ebs", {}).get("SnapshotId")
    expected = f"{exp.root_device_type} {exp.root_device_name}" + (f" {exp.snapshot_id}" if exp.snapshot_id else "")
    if not image.get("RootDeviceName"):
        return Check(exp.region, exp.ami_id, "root device", "Missing", expected, "")
    actual = f"{image.get('RootDeviceType')} {image.get('RootDeviceName')}"
    if exp.root_device_type == "ebs":
        actual += f" {snapshot}" if exp.snapshot_id else ("" if mapping else " (no mapping for the root device)")
    return _check(exp, "root device", expected, actual)


def _protection(image: dict[str, Any]) -> str | None:
    state = image.get("DeregistrationProtection")
    if state is None:
        return None
    return "disabled" if str(state).startswith("disabled") else "enabled"


def image_checks(exp: ImageExpectation, image: dict[str, Any]) -> list[Check]:
    """The checks answered by DescribeImages alone. Pure."""
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    missing_tags = {k: v for k, v in exp.tags.items() if tags.get(k) != v}
    tag_status: Status = "Correct" if not missing_tags else ("Missing" if not tags else "Incorrect")
    return [
        _check(exp, "state", "available", image.get("State")),
        _check(exp, "architecture", exp.architecture, image.get("Architecture")),
        _check(exp, "virtualization", exp.virtualization, image.get("VirtualizationType")),
        _check(exp, "boot mode", exp.boot_mode or "none", image.get("BootMode") or (None if exp.boot_mode else "none")),
        _check(exp, "ena", "any" if exp.ena is None else exp.ena,
               ("any" if exp.ena is None else image.get("EnaSupport"))),
        _check(exp, "imds", exp.imds, image.get("ImdsSupport")),
        _root_device(exp, image),
        deprecation_check(exp, image),
        _check(exp, "deregistration protection", "enabled" if exp.deregistration_protection else "disabled",
               _protection(image)),
        Check(exp.region, exp.ami_id, "tags", tag_status,
              ", ".join(f"{k}={v}" for k, v in sorted(exp.tags.items())),
              ", ".join(f"{k}={tags.get(k, '')}" for k in sorted(missing_tags)) or "as expected"),
    ]


def launch_permission_text(public: bool, shared: list[str]) -> str:
    return ", ".join(["public" if public else "private", *sorted(shared)])


def _launch_permission(ec2: EC2Client, exp: ImageExpectation) -> Check:
    permissions = ec2.describe_image_attribute(ImageId=exp.ami_id, Attribute="launchPermission")
    entries = permissions.get("LaunchPermissions", [])
    public = any(p.get("Group") == "all" for p in entries)
    shared = [str(v) for p in entries for k, v in p.items() if k in ("UserId", "OrganizationArn",
                                                                     "OrganizationalUnitArn")]
    return _check(exp, "launch permission", launch_permission_text(exp.public, list(exp.shared_with)),
                  launch_permission_text(public, shared))


def _snapshot_permission(ec2: EC2Client, exp: ImageExpectation, image: dict[str, Any]) -> Check:
    """The root snapshot must never be public (an AMI shares what it needs; a public snapshot leaks the disk)."""
    ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    if exp.root_device_type != "ebs":
        return Check(exp.region, exp.ami_id, "snapshot permission", "Correct", "no snapshot", "instance-store")
    if not ids:
        return Check(exp.region, exp.ami_id, "snapshot permission", "Missing", "private snapshot", "")
    shared = []
    for snapshot in ids:
        answer = ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")
        if any(p.get("Group") == "all" for p in answer.get("CreateVolumePermissions", [])):
            shared.append(snapshot)
    return _check(exp, "snapshot permission", "private", f"public: {', '.join(shared)}" if shared else "private")


def _ssm(ssm: SSMClient, exp: ImageExpectation) -> Check:
    if exp.ssm_parameter is None:
        return Check(exp.region, exp.ami_id, "ssm parameter", "Correct", "not the current release", "not checked")
    try:
        value = ssm.get_parameter(Name=exp.ssm_parameter)["Parameter"].get("Value")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return Check(exp.region, exp.ami_id, "ssm parameter", "Missing", f"{exp.ssm_parameter} = {exp.ami_id}", "")
        raise
    return _check(exp, "ssm parameter", f"{exp.ssm_parameter} = {exp.ami_id}", f"{exp.ssm_parameter} = {value}")


def verify_region(ec2: EC2Client, ssm: SSMClient, exp: ImageExpectation) -> RegionReport:
    report = RegionReport(exp.region, exp.ami_id)
    try:
        images = ec2.describe_images(ImageIds=[exp.ami_id]).get("Images", [])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        report.checks = _all(exp, "Missing" if code in _NOT_FOUND else "Unreachable", code or str(exc))
        return report
    except BotoCoreError as exc:
        report.checks = _all(exp, "Unreachable", type(exc).__name__)
        return report
    image = next((i for i in images if i.get("ImageId") == exp.ami_id), None)
    if image is None:
        report.checks = _all(exp, "Missing", "DescribeImages does not list it")
        return report
    report.checks = image_checks(exp, dict(image))
    readers: list[tuple[str, Callable[[], Check]]] = [
        ("launch permission", lambda: _launch_permission(ec2, exp)),
        ("snapshot permission", lambda: _snapshot_permission(ec2, exp, dict(image))),
        ("ssm parameter", lambda: _ssm(ssm, exp)),
    ]
    report.checks += [_guarded(exp, name, read) for name, read in readers]
    order = {name: i for i, name in enumerate(CHECKS)}
    report.checks.sort(key=lambda c: order[c.name])
    return report


def _guarded(exp: ImageExpectation, name: str, read: Callable[[], Check]) -> Check:
    """One read-only call's check; an error answer (denied, throttled to the end) makes it Unreachable."""
    try:
        return read()
    except ClientError as exc:
        return Check(exp.region, exp.ami_id, name, "Unreachable", "", exc.response.get("Error", {}).get("Code", ""))
    except BotoCoreError as exc:
        return Check(exp.region, exp.ami_id, name, "Unreachable", "", type(exc).__name__)


def verify_images(
    ec2_for: Callable[[str], EC2Client], ssm_for: Callable[[str], SSMClient], expectations: list[ImageExpectation]
) -> list[RegionReport]:
    """Every region's report, in the order given."""
    return [verify_region(ec2_for(exp.region), ssm_for(exp.region), exp) for exp in expectations]
