"""What a published release must look like in AWS, region by region, from its record (pure), and the
verification of all of it (aws/verify.py does the reading)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from archami.aws.clients import AwsSettings, Clients
from archami.aws.distribute import ssm_parameter_name
from archami.aws.images import archami_tags
from archami.aws.verify import CHECKS, ENDPOINT_PROFILES, ImageExpectation, RegionReport, verify_images
from archami.config.publish import DEFAULT_SSM_PREFIX, PublishSettings
from archami.errors import ArchamiError
from archami.release.records import ReleaseRecord, UnverifiedCheck, VariantRelease, VerificationSummary

EC2_ARCHITECTURE = {"x86_64": "x86_64", "i686": "i386", "aarch64": "arm64"}


@dataclass(frozen=True)
class VerifyPolicy:
    """What the publisher configured (the defaults are `archami publish`'s; from_settings reads [publish])."""

    current: bool = True  # the newest release: the SSM parameters must point at its AMIs
    ssm_prefix: str = DEFAULT_SSM_PREFIX
    deprecate_after_days: int | None = 365
    deprecate_on: date | None = None  # a fixed deprecation date instead of days after publishing
    deregistration_protection: bool = False
    shared_with: tuple[str, ...] = ()
    extra_tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, settings: PublishSettings, *, current: bool, position: int = 0) -> VerifyPolicy:
        """`position`: how many releases of the family are newer (0: the newest), for the protection window."""
        deprecate = settings.deprecate
        return cls(
            current=current, ssm_prefix=settings.ssm_prefix,
            deregistration_protection=settings.protects(position),
            deprecate_after_days=deprecate if isinstance(deprecate, int) else None,
            deprecate_on=deprecate if isinstance(deprecate, date) else None,
            shared_with=tuple(v for entry in settings.share.launch_permissions() for v in entry.values()),
            extra_tags=tuple(sorted(settings.tags.items())),
        )


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
        tags = {**dict(policy.extra_tags), **archami_tags(record.definition_name, info.id, record.release_id)}
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
                deprecate_at=datetime.combine(policy.deprecate_on, time(), tzinfo=UTC) if policy.deprecate_on else None,
                deregistration_protection=policy.deregistration_protection, shared_with=policy.shared_with,
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


def parse_accepted(values: Iterable[str]) -> dict[str, str]:
    """`--accept-unverified` values: check names ("boot mode" or boot-mode, comma-separated) or an endpoint
    profile ("moto": every attribute that emulator cannot give back), as check -> reason recorded."""
    accepted: dict[str, str] = {}
    for value in values:
        for word in (w.strip() for w in value.split(",")):
            if not word:
                continue
            if word in ENDPOINT_PROFILES:
                accepted.update(ENDPOINT_PROFILES[word])
                continue
            name = word.replace("-", " ").replace("_", " ").lower()
            if name not in CHECKS:
                known = ", ".join([*ENDPOINT_PROFILES, *(c.replace(" ", "-") for c in CHECKS)])
                raise ArchamiError(f"--accept-unverified {word!r}: not a check or endpoint profile ({known})")
            accepted.setdefault(name, "not verifiable at this endpoint (--accept-unverified)")
    return accepted


def summarize(result: ReleaseVerification, accepted: Mapping[str, str], endpoint: str,
              now: datetime | None = None) -> VerificationSummary:
    """Judge a verification: Correct counts; an accepted attribute the endpoint answered not at all or
    otherwise is Unverified (with the reason, never Correct); anything else holds the release back. Pure."""
    counts: dict[str, int] = {}
    unverified: list[UnverifiedCheck] = []
    problems: list[str] = []
    for report in result.reports:
        for check in report.checks:
            status: str = check.status
            if status in ("Missing", "Incorrect") and check.name in accepted:
                status = "Unverified"
                unverified.append(UnverifiedCheck(region=check.region, ami_id=check.ami_id, attribute=check.name,
                                                  reason=accepted[check.name], answer=check.actual))
            elif status != "Correct":
                problems.append(f"{check.region} {check.ami_id} {check.name}: expected {check.expected or '-'}, "
                                f"actual {check.actual or 'none'} ({status})")
            counts[status] = counts.get(status, 0) + 1
    return VerificationSummary(
        checked_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"), endpoint=endpoint,
        status="held-back" if problems else ("accepted-unverified" if unverified else "verified"),
        counts=dict(sorted(counts.items())), unverified=unverified, problems=problems,
    )
