"""Publish settings: everything publishing needs that belongs to an image family, declared once.

The `[publish]` table of a definition is a `PublishSettings`; the flags of `archami publish` and
`archami release` override it key by key (`apply_overrides`, flag names in `FLAG_OF`), and the AWS stage
publishes with the result. Values are checked here against AWS's own rules (region names, S3 bucket names,
SSM parameter names, account ids, ARNs, tags), so a typo fails before anything is built or uploaded.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from archami.errors import ArchamiError, ConfigError

DEFAULT_SSM_PREFIX = "/archami"
DEFAULT_DEPRECATE_DAYS = 365
DEFAULT_PROTECT_PREVIOUS = 2  # releases before the current one that keep deregistration protection
MAX_DEPRECATE_DAYS = 10 * 365  # EnableImageDeprecation accepts up to 10 years ahead

# The union of botocore's partition patterns (partitions.json `regionRegex`): aws, aws-cn, aws-us-gov,
# aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc. Whether a region is enabled is asked of EC2 later.
AWS_REGION = re.compile(r"(?:us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov|us-iso[bf]?|eu-isoe|eusc-de)-[a-z]+-\d+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()-]+(?:/[A-Za-z0-9!_.*'()-]+)*")  # S3's "safe" key characters
_SSM_PREFIX = re.compile(r"(?:/[A-Za-z0-9_.-]+)+")
SSM_MAX_DEPTH = 15  # levels of a parameter name; archami adds <family>/<variant>/latest
_ACCOUNT = re.compile(r"\d{12}")
_ORGANIZATION = re.compile(r"arn:aws[a-z-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}")
_ORGANIZATIONAL_UNIT = re.compile(
    r"arn:aws[a-z-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}"
)
_KMS_KEY = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)")
_TAG_PUNCTUATION = set(" _.:/=+-@")  # with letters and digits: what EC2 and EBS accept in tags everywhere
RESERVED_TAG_PREFIXES = ("aws:", "archami:")
MAX_USER_TAGS = 47  # EC2 allows 50 per resource; archami's own three identify the release

# The flag of `archami publish` / `archami release` that overrides each setting (keys of apply_overrides).
FLAG_OF: dict[str, str] = {
    "regions": "--regions",
    "source_region": "--source-region",
    "public": "--public/--private",
    "share.accounts": "--share-account",
    "share.organizations": "--share-org",
    "share.organizational_units": "--share-ou",
    "deprecate": "--deprecate",
    "ssm_prefix": "--ssm-prefix",
    "method": "--method",
    "bucket": "--bucket",
    "bucket_prefix": "--bucket-prefix",
    "ec2_certificate": "--ec2-cert",
    "signing_key": "--signing-key",
    "encrypted": "--encrypted/--unencrypted",
    "kms_key_arn": "--kms-key",
    "tags": "--tag",
}


def _region(name: str) -> str:
    if not AWS_REGION.fullmatch(name):
        raise ValueError(f"{name!r} is not an AWS region name (such as us-east-1 or eu-west-2)")
    return name


def _regions(value: object) -> object:
    if value == "all":
        return value
    if isinstance(value, str):
        raise ValueError('give a list of region names, or "all" (every enabled region of the partition)')
    if isinstance(value, list):
        if not value:
            raise ValueError('the list is empty; "all" means every enabled region')
        if "all" in value:
            raise ValueError('"all" is not a region: use regions = "all" on its own')
        names = [_region(v) if isinstance(v, str) else v for v in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"listed twice: {', '.join(map(str, twice))}")
    return value


def _bucket(name: str) -> str:
    if not _BUCKET.fullmatch(name):
        raise ValueError(
            f"{name!r} is not an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in name:
        raise ValueError(f"{name!r}: S3 bucket names cannot hold two adjacent periods")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise ValueError(f"{name!r}: S3 bucket names cannot look like an IP address")
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        raise ValueError(f"{name!r} starts or ends with a prefix or suffix S3 reserves")
    return name


def _key_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if prefix and not _KEY_PREFIX.fullmatch(prefix):
        raise ValueError(f"{prefix!r}: use letters, digits, '/' between parts, and !_.*'()- only")
    return prefix


def _ssm_prefix(prefix: str) -> str:
    prefix = prefix.rstrip("/") if prefix != "/" else prefix
    if not _SSM_PREFIX.fullmatch(prefix):
        raise ValueError(f"{prefix!r} is not an SSM parameter path: '/' then letters, digits and _.- per level")
    first = prefix.split("/")[1].lower()
    if first.startswith(("aws", "ssm")):
        raise ValueError(f"{prefix!r}: SSM reserves parameter names beginning with 'aws' or 'ssm'")
    if prefix.count("/") + 3 > SSM_MAX_DEPTH:
        raise ValueError(f"{prefix!r} is too deep: SSM allows {SSM_MAX_DEPTH} levels, archami adds 3")
    return prefix


def _deprecation(value: object) -> object:
    """365 (days after publishing), a date (2027-06-01), or "never"; a flag gives the same as text."""
    if isinstance(value, bool | datetime):
        raise ValueError('give a number of days, a date (2027-06-01) or "never"')
    if isinstance(value, str) and value != "never":
        text = value.strip()
        try:
            value = int(text) if text.isdigit() else date.fromisoformat(text)
        except ValueError:
            raise ValueError(f'{value!r} is not a number of days, a date (2027-06-01) or "never"') from None
    if isinstance(value, int) and not 1 <= value <= MAX_DEPRECATE_DAYS:
        raise ValueError(f'{value} days: give 1 to {MAX_DEPRECATE_DAYS} (EC2\'s limit), or "never"')
    return value


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_USER_TAGS:
        raise ValueError(f"{len(tags)} tags: at most {MAX_USER_TAGS} (EC2 allows 50, archami uses 3)")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise ValueError(f"tag {key!r}: keys are 1-128 characters, values at most 256")
        if key.lower().startswith(RESERVED_TAG_PREFIXES):
            raise ValueError(f"tag {key!r}: keys beginning with {' or '.join(RESERVED_TAG_PREFIXES)} are reserved")
        for text in (key, value):
            bad = sorted({c for c in text if not (c.isalnum() or c in _TAG_PUNCTUATION)})
            if bad:
                raise ValueError(f"tag {key!r}: {''.join(bad)!r} not allowed (letters, digits, spaces and _.:/=+-@)")
    return tags


Region = Annotated[str, AfterValidator(_region)]
Regions = Annotated[list[Region] | Literal["all"], BeforeValidator(_regions)]
Deprecation = Annotated[int | date | Literal["never"], BeforeValidator(_deprecation)]
AccountId = Annotated[str, _matching(_ACCOUNT, "a 12-digit AWS account id")]
OrganizationArn = Annotated[str, _matching(_ORGANIZATION, "an organization ARN (arn:aws:organizations::…)")]
OrganizationalUnitArn = Annotated[str, _matching(_ORGANIZATIONAL_UNIT, "an organizational unit ARN")]
Method = Literal["ebs-direct", "s3-import"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Share(_Strict):
    accounts: list[AccountId] = Field(default_factory=list, description="AWS accounts that may launch the AMIs.")
    organizations: list[OrganizationArn] = Field(
        default_factory=list, description="AWS Organizations (ARNs) whose accounts may launch the AMIs."
    )
    organizational_units: list[OrganizationalUnitArn] = Field(
        default_factory=list, description="Organizational units (ARNs) whose accounts may launch the AMIs."
    )

    def launch_permissions(self) -> list[dict[str, str]]:
        """ModifyImageAttribute's LaunchPermission entries, one per account, organization and unit."""
        return (
            [{"UserId": a} for a in self.accounts]
            + [{"OrganizationArn": o} for o in self.organizations]
            + [{"OrganizationalUnitArn": u} for u in self.organizational_units]
        )


class PublishSettings(_Strict):
    """The `[publish]` table: where and how an image family's AMIs are published."""

    regions: Regions = Field(
        default="all",
        description='Regions to publish to: a list (the source region first), or "all": every region enabled '
        "for the account in the source region's partition.",
    )
    source_region: Region | None = Field(
        default=None,
        description="Region the image is uploaded and registered in, then copied from; put first in the list "
        'when missing from it (default: the first listed; with "all", the AWS session\'s region).',
    )
    public: bool = Field(default=False, description="Launch permission for everyone.")
    share: Share = Field(default_factory=Share, description="Accounts and organizations the AMIs are shared with.")
    deprecate: Deprecation = Field(
        default=DEFAULT_DEPRECATE_DAYS,
        description='When EC2 marks the AMIs deprecated: days after publishing, a date, or "never".',
    )
    ssm_prefix: Annotated[str, AfterValidator(_ssm_prefix)] = Field(
        default=DEFAULT_SSM_PREFIX, description="SSM parameter path of PREFIX/<family>/<variant>/latest."
    )
    method: Method = Field(
        default="ebs-direct",
        description="How EBS images get into a snapshot: ebs-direct (EBS direct APIs) or s3-import "
        "(S3 + ImportSnapshot, for accounts without EBS direct). Needs bucket for s3-import.",
    )
    bucket: Annotated[str, AfterValidator(_bucket)] | None = Field(
        default=None,
        description="S3 bucket in the source region for instance-store bundles and s3-import (made if missing).",
    )
    bucket_prefix: Annotated[str, AfterValidator(_key_prefix)] = Field(
        default="", description="Key prefix in the bucket: objects go to PREFIX/<AMI name>/."
    )
    ec2_certificate: Path | None = Field(
        default=None,
        description="EC2's bundling certificate of the partition (PEM), needed by instance-store variants; "
        "a relative path is taken from the directory archami runs in.",
    )
    signing_key: Path | None = Field(
        default=None,
        description="RSA private key (PEM) that signs instance-store bundle manifests (default: a new key "
        "per bundle, kept beside it).",
    )
    encrypted: bool = Field(default=False, description="Encrypted snapshots (such AMIs cannot be public).")
    kms_key_arn: Annotated[str, _matching(_KMS_KEY, "a KMS key or alias ARN")] | None = Field(
        default=None, description="KMS key for encrypted snapshots (default: the account's EBS default key)."
    )
    tags: Annotated[dict[str, str], AfterValidator(_tags)] = Field(
        default_factory=dict, description="Extra tags on every AMI and snapshot."
    )
    deregistration_protection: bool = Field(
        default=True,
        description="Protect the AMIs of the current release and the protect_previous before it from "
        "deregistration (no cooldown); released as they age out. `archami prune` never removes them.",
    )
    protect_previous: int = Field(
        default=DEFAULT_PROTECT_PREVIOUS, ge=0, le=100,
        description="How many releases before the current one keep deregistration protection.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PublishSettings:
        if self.public and self.encrypted:
            raise ValueError(
                "encrypted AMIs cannot be made public: set public or encrypted to false (--private / --unencrypted)"
            )
        if self.kms_key_arn and not self.encrypted:
            raise ValueError("kms_key_arn is set but encrypted is false (--kms-key needs --encrypted)")
        return self

    def deprecation_time(self, now: datetime) -> datetime | None:
        """When the AMIs published `now` become deprecated; ArchamiError for a date already past."""
        if self.deprecate == "never":
            return None
        if isinstance(self.deprecate, int):
            return (now + timedelta(days=self.deprecate)).replace(microsecond=0)
        when = datetime.combine(self.deprecate, time(), tzinfo=UTC)
        if when <= now:
            raise ArchamiError(f"publish.deprecate (--deprecate): {self.deprecate} is not in the future")
        return when

    def protects(self, position: int) -> bool:
        """Whether the release `position` places from the newest (0) is inside the protection window."""
        return self.deregistration_protection and 0 <= position <= self.protect_previous

    def check_can_publish(self, root_device: str) -> None:
        """What a variant of this root device needs besides the defaults; ArchamiError naming the key."""
        if root_device == "instance-store":
            if not self.bucket:
                raise ArchamiError("instance-store variants need publish.bucket (--bucket): an S3 bucket for bundles")
            if not self.ec2_certificate:
                raise ArchamiError(
                    "instance-store variants need publish.ec2_certificate (--ec2-cert): "
                    "EC2's bundling certificate of the partition (PEM)"
                )
            for key, path in (("ec2_certificate", self.ec2_certificate), ("signing_key", self.signing_key)):
                if path is not None and not path.is_file():
                    raise ArchamiError(f"publish.{key} ({FLAG_OF[key]}): {path} is not a readable file")
        elif self.method == "s3-import" and not self.bucket:
            raise ArchamiError("method s3-import needs publish.bucket (--bucket): an S3 bucket in the source region")

    def s3_key(self, ami_name: str, filename: str) -> str:
        return "/".join(p for p in (self.bucket_prefix, ami_name, filename) if p)


def parse_regions(text: str) -> list[str] | Literal["all"]:
    """A --regions value: 'all', or names separated by commas (checked by the model)."""
    if text.strip() == "all":
        return "all"
    return [r.strip() for r in text.split(",") if r.strip()]


def apply_overrides(settings: PublishSettings, overrides: Mapping[str, object], *, origin: str) -> PublishSettings:
    """`settings` with the values in `overrides` (keys of FLAG_OF, e.g. "bucket", "share.accounts") put in.

    A flag replaces the setting it names; `tags` are merged key by key (a flag's value wins). Errors name the
    flag for a value given as a flag, else the key in `origin` (the definition file).
    """
    unknown = sorted(set(overrides) - set(FLAG_OF))
    if unknown:
        raise ValueError(f"not publish settings: {', '.join(unknown)}")
    data = settings.model_dump()
    for key, value in overrides.items():
        if key == "tags" and isinstance(value, Mapping):
            value = {**data["tags"], **value}
        *parents, leaf = key.split(".")
        target = data
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    try:
        return PublishSettings.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = [str(part) for part in error["loc"]]
        given = next((k for k in overrides if loc[: len(k.split("."))] == k.split(".")), None)
        if given is not None:
            raise ArchamiError(f"{FLAG_OF[given]}: {reason}") from None
        raise ConfigError(origin, ".".join(["publish", *loc]), reason) from None
