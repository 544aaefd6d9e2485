"""Release records: `releases/<id>.json`, one per release, the source of the site, the changelog and lookups.

A record is self-contained (each variant's package list is in it), so a changelog between two releases and
the release page can be rebuilt from the records alone, years later, without the build outputs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from archami.artifacts import Manifest, PublishRecord, TestReport, read_json, write_json_atomic
from archami.config.spec import ImageSpec
from archami.config.variant import Variant
from archami.errors import ArchamiError
from archami.release.ids import is_release_id, sort_key

RECORD_SCHEMA_VERSION = 1


class VariantInfo(BaseModel):
    """The variant facts a release page needs: kept in the record so old records outlive schema changes."""

    model_config = ConfigDict(frozen=True)
    id: str
    label: str
    release: str
    root_device: str
    virtualization: str
    architecture: str
    flavour: str = "default"
    kernel_channel: str = "stable"
    kernel_package: str = ""
    description: str = ""  # what the flavour is for ("" for the default flavour)
    instance_type: str | None = None  # the flavour's suggested instance type

    @classmethod
    def from_variant(cls, v: Variant) -> VariantInfo:
        return cls(
            id=v.id, label=v.label, release=v.release, root_device=v.root_device, virtualization=v.virtualization,
            architecture=v.architecture, flavour=v.flavour, kernel_channel=v.kernel_channel,
            kernel_package=v.kernel_package,
        )

    @classmethod
    def from_spec(cls, spec: ImageSpec) -> VariantInfo:
        """With the flavour's description and instance type, which the release page shows."""
        return cls.from_variant(spec.variant).model_copy(
            update={"description": spec.flavour_description, "instance_type": spec.instance_type}
        )


# The seed's column order: paravirtual before hvm, x86_64 before i386, ebs before s3, plain before gpu.
_VIRT_ORDER = {"paravirtual": 0, "hvm": 1}
_ARCH_ORDER = {"x86_64": 0, "i686": 1, "aarch64": 2}
_ROOT_ORDER = {"ebs": 0, "instance-store": 1}
_CHANNEL_ORDER = {"stable": 0, "lts": 1}


def column_order(v: VariantInfo) -> tuple[str, int, int, int, str, int, str]:
    """Sort key putting variants in the seed's column order (ebs/s3 x paravirtual/hvm x arch, gpu...)."""
    return (
        v.release,
        _VIRT_ORDER.get(v.virtualization, 9),
        _ARCH_ORDER.get(v.architecture, 9),
        _ROOT_ORDER.get(v.root_device, 9),
        "" if v.flavour == "default" else v.flavour,
        _CHANNEL_ORDER.get(v.kernel_channel, 9),
        v.id,
    )


class FirmwareResult(BaseModel):
    firmware: str
    ok: bool
    boot_to_ssh_seconds: float | None = None


class BootTestResult(BaseModel):
    status: Literal["passed", "failed", "skipped"]
    reason: str = ""  # why it was skipped, or which check failed
    runs: list[FirmwareResult] = Field(default_factory=list)
    # What a passed boot did not exercise because this machine lacks it, e.g. "GPU" (QEMU has none).
    not_checked: list[str] = Field(default_factory=list)

    @property
    def shown(self) -> str:
        """The status as the page and the CLI say it: a gpu image that booted is "booted, GPU not tested"."""
        if self.status == "passed" and self.not_checked:
            return f"booted, {' and '.join(self.not_checked)} not tested"
        return self.status

    @classmethod
    def from_reports(cls, reports: list[TestReport]) -> BootTestResult:
        runs = [FirmwareResult(firmware=r.firmware, ok=r.ok, boot_to_ssh_seconds=r.boot_to_ssh_seconds)
                for r in reports]
        failed = [f"{r.firmware}: {c.name}" for r in reports for c in r.checks if not c.ok]
        failed += [f"{r.firmware}: failed" for r in reports if not r.ok and not any(not c.ok for c in r.checks)]
        ok = bool(reports) and all(r.ok for r in reports)
        return cls(status="passed" if ok else "failed", reason="; ".join(failed), runs=runs)


class RegionAmi(BaseModel):
    region: str
    ami_id: str
    snapshot_id: str | None = None
    image_location: str | None = None  # instance-store AMIs: the S3 manifest
    public: bool = False


class VariantRelease(BaseModel):
    """One variant of one release: what was built, how it was tested, and where it was published."""

    variant: VariantInfo
    ami_name: str
    boot_mode: str
    kernel_version: str  # `uname -r` of the image
    image_sha256: str
    image_size: int
    used_bytes: int
    packages_sha256: str  # the manifest's digest of its sorted package list
    packages: dict[str, str]  # name -> version: what changelogs are computed from
    built_at: str
    boot_test: BootTestResult
    regions: dict[str, RegionAmi] = Field(default_factory=dict)

    @classmethod
    def assemble(
        cls, manifest: Manifest, boot_test: BootTestResult, published: PublishRecord, spec: ImageSpec | Variant
    ) -> VariantRelease:
        """From the stage artifacts; a spec (not just the variant) also gives the flavour's page facts."""
        return cls(
            variant=VariantInfo.from_spec(spec) if isinstance(spec, ImageSpec) else VariantInfo.from_variant(spec),
            ami_name=published.ami_name,
            boot_mode=manifest.boot_mode,
            kernel_version=manifest.kernel_version,
            image_sha256=manifest.image_sha256,
            image_size=manifest.image_size,
            used_bytes=manifest.used_bytes,
            packages_sha256=manifest.packages_sha256,
            packages={p.name: p.version for p in sorted(manifest.packages, key=lambda p: p.name)},
            built_at=manifest.built_at,
            boot_test=boot_test,
            regions={
                region: RegionAmi(
                    region=region, ami_id=image.ami_id, snapshot_id=image.snapshot_id,
                    image_location=image.image_location, public=image.public,
                )
                for region, image in sorted(published.regions.items())
            },
        )

    @property
    def linux_version(self) -> str:
        """Upstream Linux version for the news line ('6.1.119'), from the kernel package or `uname -r`."""
        return linux_version(self.packages.get(self.variant.kernel_package), self.kernel_version)


_UPSTREAM = re.compile(r"\d+\.\d+(?:\.\d+)?")


def linux_version(package_version: str | None, uname_release: str) -> str:
    """'6.12.1.arch1-1' -> '6.12.1'; Debian's meta package '6.1.119-1' -> '6.1.119'; else `uname -r`'s start."""
    for text in (package_version, uname_release):
        if text:
            match = _UPSTREAM.match(text.split(":", 1)[-1])  # drop an epoch
            if match:
                return match.group(0)
    return uname_release


class UnreleasedVariant(BaseModel):
    """A variant of the release that has no AMIs: skipped (it cannot be published, by a rule archami knows)
    or failed (a step broke; re-running the release retries it)."""

    variant: VariantInfo
    outcome: Literal["failed", "skipped"]
    step: str | None = None  # the step that failed: build, audit, boot, publish
    reason: str


class UnverifiedCheck(BaseModel):
    """A check the endpoint could not answer, accepted by the publisher as unverified (never as Correct)."""

    region: str
    ami_id: str
    attribute: str
    reason: str  # why the endpoint's answer is no evidence (the accepting flag or endpoint profile says)
    answer: str = ""  # what the endpoint said, if anything


class VerificationSummary(BaseModel):
    """The post-publish verification of a release (release/gate.py): the page and stream show a release only
    when `publishable`; "held-back" releases stay recorded (their AMIs exist) but are not shown as current."""

    checked_at: str
    endpoint: str  # "AWS", or the --endpoint-url the checks were sent to
    status: Literal["verified", "accepted-unverified", "held-back"]
    counts: dict[str, int] = Field(default_factory=dict)  # Correct/Incorrect/Missing/Unreachable/Unverified
    unverified: list[UnverifiedCheck] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # held back: region, AMI, attribute, expected, actual

    @property
    def publishable(self) -> bool:
        return self.status != "held-back"

    @classmethod
    def pending(cls) -> VerificationSummary:
        """A record the pipeline has written but not yet verified (e.g. killed in between): held back."""
        return cls(checked_at="", endpoint="", status="held-back",
                   problems=["not verified yet: run the same `archami release` again"])

    @property
    def unverified_attributes(self) -> list[str]:
        return sorted({u.attribute for u in self.unverified})


class LifecycleEvent(BaseModel):
    """One lifecycle call on one of the release's AMIs: protection on or off, deprecation, removal."""

    at: str
    action: Literal["protect", "unprotect", "deprecate", "remove", "delete-snapshot"]
    region: str
    ami_id: str
    variant_id: str
    outcome: Literal["done", "not-implemented", "failed"]
    detail: str = ""
    snapshots_deleted: list[str] = Field(default_factory=list)
    snapshots_left: list[str] = Field(default_factory=list)


class ReleaseRecord(BaseModel):
    schema_version: int = RECORD_SCHEMA_VERSION
    release_id: str
    definition_name: str
    distro: str
    description: str = ""
    definition_sha256: str
    created_at: str  # ISO 8601, UTC
    archami_version: str
    # partial: some variant failed; the release is still open and the same `archami release` retries it.
    status: Literal["complete", "partial"] = "complete"
    variants: list[VariantRelease]  # the published ones, in column order
    not_released: list[UnreleasedVariant] = Field(default_factory=list)
    fleet_report: str | None = None  # an attached `archami fleet` report, a file beside this record
    verification: VerificationSummary | None = None  # None: recorded before archami verified releases
    lifecycle: list[LifecycleEvent] = Field(default_factory=list)  # protection, deprecation, removal, in order

    @property
    def publishable(self) -> bool:
        """Shown on the page and in the stream: verified (or recorded before verification existed)."""
        return self.verification is None or self.verification.publishable

    def removed(self, region: str, ami_id: str) -> LifecycleEvent | None:
        """The removal of this AMI, when prune deregistered it."""
        return next((e for e in self.lifecycle if e.action == "remove" and e.outcome == "done"
                     and e.region == region and e.ami_id == ami_id), None)

    def protection(self, region: str, ami_id: str) -> Literal["enabled", "disabled"] | None:
        """The AMI's deregistration protection as archami last set it (a call the endpoint did not implement
        or refused changed nothing), or None: never set."""
        for event in reversed(self.lifecycle):
            if (event.action in ("protect", "unprotect") and event.outcome == "done" and event.region == region
                    and event.ami_id == ami_id):
                return "enabled" if event.action == "protect" else "disabled"
        return None

    def ordered_variants(self) -> list[VariantRelease]:
        return sorted(self.variants, key=lambda v: column_order(v.variant))

    def variant(self, variant_id: str) -> VariantRelease | None:
        return next((v for v in self.variants if v.variant.id == variant_id), None)

    @property
    def regions(self) -> list[str]:
        return sorted({r for v in self.variants for r in v.regions})


def record_path(releases_dir: Path, release_id: str) -> Path:
    return releases_dir / f"{release_id}.json"


def save_record(releases_dir: Path, record: ReleaseRecord) -> Path:
    path = record_path(releases_dir, record.release_id)
    write_json_atomic(path, record)
    path.chmod(0o644)  # records are published with the site: readable by the web server, not only by us
    return path


def load_record(path: Path) -> ReleaseRecord:
    return read_json(path, ReleaseRecord)


def published_records(releases_dir: Path, definition_name: str | None = None) -> list[ReleaseRecord]:
    """The records the page and the stream show, newest first: every one but those verification held back."""
    return [r for r in load_records(releases_dir, definition_name) if r.publishable]


def load_records(releases_dir: Path, definition_name: str | None = None) -> list[ReleaseRecord]:
    """Every record in the directory, newest first (optionally only one image family's)."""
    if not releases_dir.is_dir():
        raise ArchamiError(f"{releases_dir}: no such releases directory")
    records = [load_record(p) for p in releases_dir.glob("*.json") if is_release_id(p.stem)]
    if definition_name is not None:
        records = [r for r in records if r.definition_name == definition_name]
    return sorted(records, key=lambda r: sort_key(r.release_id), reverse=True)
