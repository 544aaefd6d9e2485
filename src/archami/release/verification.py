"""What a published release must look like in AWS, region by region, from its record (pure), and the
verification of all of it (aws/verify.py does the reading)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from archami.aws.clients import AwsSettings, Clients
from archami.aws.expose import ssm_parameter_name
from archami.aws.tags import archami_tags
from archami.aws.verify import ImageExpectation, RegionReport, verify_images
from archami.release.records import ReleaseRecord, VariantRelease

EC2_ARCHITECTURE = {"x86_64": "x86_64", "i686": "i386", "aarch64": "arm64"}


@dataclass(frozen=True)
class VerifyPolicy:
    """What the publisher configured (the defaults are `archami publish`'s)."""

    current: bool = True  # the newest release: the SSM parameters must point at its AMIs
    ssm_prefix: str = "/archami"
    deprecate_after_days: int | None = 365
    deregistration_protection: bool = False


def root_device_name(variant: VariantRelease) -> str:
    """As the build's manifest and RegisterImage name it: /dev/xvda on hvm EBS, /dev/sda1 otherwise."""
    info = variant.variant
    return "/dev/xvda" if info.virtualization == "hvm" and info.root_device == "ebs" else "/dev/sda1"


def expectations(record: ReleaseRecord, policy: VerifyPolicy) -> list[ImageExpectation]:
    """One expectation per (variant, region) of the record. Pure."""
    found = []
    for variant in record.ordered_variants():
        info = variant.variant
        hvm = info.virtualization == "hvm"
        tags = archami_tags(record.definition_name, info.id, record.release_id)
        for region, ami in sorted(variant.regions.items()):
            found.append(ImageExpectation(
                region=region, ami_id=ami.ami_id,
                architecture=EC2_ARCHITECTURE.get(info.architecture, info.architecture),
                virtualization=info.virtualization, boot_mode=variant.boot_mode if hvm else None,
                ena=True if hvm else None, root_device_name=root_device_name(variant),
                root_device_type="ebs" if info.root_device == "ebs" else "instance-store",
                snapshot_id=ami.snapshot_id, public=ami.public, tags=tags,
                ssm_parameter=ssm_parameter_name(policy.ssm_prefix, record.definition_name, info.id)
                if policy.current else None,
                deprecate_after=timedelta(days=policy.deprecate_after_days) if policy.deprecate_after_days else None,
                deregistration_protection=policy.deregistration_protection,
            ))
    return found


@dataclass(frozen=True)
class ReleaseVerification:
    release_id: str
    reports: list[RegionReport]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


def verify_release(
    record: ReleaseRecord, policy: VerifyPolicy, endpoint_url: str | None = None, clients: Clients | None = None
) -> ReleaseVerification:
    """Re-read every region of the release (read-only calls) and compare with what its record says."""
    clients = clients or Clients(AwsSettings(endpoint_url=endpoint_url, max_attempts=3))
    reports = verify_images(clients.ec2, clients.ssm, expectations(record, policy))
    return ReleaseVerification(record.release_id, reports)
