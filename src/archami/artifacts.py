"""Typed, on-disk artifacts handed from one stage to the next.

    definition.toml --plan--> Variant[] --build--> BuildResult (image.raw + manifest.json)
        --audit/boot--> TestReport --publish--> PublishRecord --release--> ReleaseRecord

Each artifact is a pydantic model saved as JSON next to what it describes, so any stage can be re-run,
resumed or tested alone.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archami.boundedio import ARTIFACT_LIMIT, InputFileError, read_text_bounded
from archami.bzimage import KernelFacts
from archami.config.variant import Variant
from archami.errors import ArchamiError

MANIFEST_NAME = "manifest.json"
IMAGE_NAME = "image.raw"
TEST_REPORT_NAME = "boot-test.json"
AUDIT_REPORT_NAME = "audit.json"

M = TypeVar("M", bound=BaseModel)


def write_json_atomic(path: Path, model: BaseModel) -> None:
    """Write a model as JSON via a temp file + rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(model.model_dump_json(indent=2))
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArtifactError(ArchamiError, ValueError):
    """A file one stage wrote and another reads is missing, unreadable or not what it should be (a ValueError
    too, for callers that treat a bad artifact as absent)."""

    exit_code = 2


def artifact_kind(model: type[BaseModel]) -> str:
    """'MeasurementReport' -> 'measurement report': what error messages call a file."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()


def _field(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(the whole file)"


def read_json(path: Path, model: type[M], what: str | None = None, limit: int = ARTIFACT_LIMIT) -> M:
    """The artifact at `path` as `model`: bounded reading, and one clear line instead of a traceback when the
    file is missing, special, too large, not JSON or not a valid `what` ("file X is not a valid manifest:
    field image_size: ...")."""
    what = what or artifact_kind(model)
    try:
        text = read_text_bounded(path, limit, what)
    except InputFileError as exc:
        raise ArtifactError(str(exc)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"file {path} is not a valid {what}: not JSON ({exc.msg}, line {exc.lineno} column "
                            f"{exc.colno})") from None
    except (RecursionError, ValueError) as exc:  # nesting deeper than Python's stack, a 5000-digit number
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise ArtifactError(f"file {path} is not a valid {what}: {reason}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        reason = "missing" if first["type"] == "missing" else str(first["msg"]).removeprefix("Value error, ")
        raise ArtifactError(f"file {path} is not a valid {what}: field {_field(tuple(first['loc']))}: "
                            f"{reason}{more}") from None


class PackageInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    version: str
    architecture: str = ""


class PartitionInfo(BaseModel):
    """One filesystem area of the disk (number 0: the whole disk, no partition table)."""

    model_config = ConfigDict(frozen=True)
    role: str  # bios, esp, root
    number: int
    start: int  # bytes
    size: int  # bytes
    type_guid: str | None = None
    part_uuid: str | None = None
    fs_uuid: str | None = None  # ext4 UUID or FAT volume id (XXXX-XXXX)
    fs_label: str | None = None


class Manifest(BaseModel):
    """What one build produced: written as manifest.json beside image.raw."""

    archami_version: str
    definition_name: str
    definition_path: str
    definition_sha256: str
    variant: Variant
    variant_id: str
    description: str = ""
    built_at: str  # ISO 8601, UTC
    build_seconds: float
    kernel_version: str
    boot_mode: str  # EC2 BootMode: uefi-preferred, legacy-bios, uefi
    root_device_name: str = "/dev/xvda"
    image_size: int  # bytes (the raw image's apparent size = volume size)
    used_bytes: int  # bytes allocated in the sparse image (what upload must send at most)
    image_sha256: str
    packages: list[PackageInfo]
    packages_sha256: str  # digest of the sorted "name version" lines: cheap changelog equality
    # Optional, added by the build stage: how the disk is laid out and booted, and how it was built.
    partition_scheme: str | None = None  # gpt, or none (pv-grub hd0: the filesystem is the whole disk)
    partitions: list[PartitionInfo] = Field(default_factory=list)
    root_fs_uuid: str | None = None
    kernel_cmdline: str | None = None
    kernel: KernelFacts | None = None  # the kernel file the boot loader loads: compression, version, bits
    root_cache_key: str | None = None
    root_cache_hit: bool | None = None
    source_date_epoch: int | None = None  # every time stamp in the image is tied to it (reproducible builds)


class BuildResult(BaseModel):
    out_dir: Path
    image: Path
    manifest_path: Path
    manifest: Manifest


class CheckResult(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class TestReport(BaseModel):
    """Result of `archami boot`: one per firmware."""

    image_sha256: str
    firmware: Literal["bios", "uefi"]
    ok: bool
    boot_to_ssh_seconds: float | None
    checks: list[CheckResult] = Field(default_factory=list)
    serial_log: str | None = None  # kept on failure
    # Facts about the boot (optional, added by the vm stage): compare two boots of one disk with them.
    accel: str | None = None  # kvm or tcg
    disk_size: int | None = None  # bytes of the volume the guest saw
    instance_id: str | None = None  # what the local IMDS said
    kernel: str | None = None  # uname -r in the guest
    architecture: str | None = None  # uname -m in the guest
    machine_id: str | None = None
    host_key: str | None = None  # the guest's ed25519 host key ("ssh-ed25519 AAAA...")
    work_dir: str | None = None  # kept with --keep: the overlay disk, key and logs


def boot_report_name(firmware: str) -> str:
    """boot-test-bios.json / boot-test-uefi.json, beside the image."""
    return f"boot-test-{firmware}.json"


class AuditFinding(BaseModel):
    model_config = ConfigDict(frozen=True)
    rule: str  # short stable id, e.g. "ssh-authorized-keys"
    path: str  # inside the image, absolute
    detail: str = ""


class AuditReport(BaseModel):
    """Result of `archami audit`: what must not ship in a public AMI (empty findings = clean)."""

    target: str  # the image or root directory audited
    ok: bool
    findings: list[AuditFinding] = Field(default_factory=list)
    checked_rules: list[str] = Field(default_factory=list)
    root_partition: int | None = None  # partition number audited inside an image
    image_sha256: str | None = None  # the image audited (the build records it: publish checks it)


class RegionImage(BaseModel):
    region: str
    ami_id: str
    snapshot_id: str | None = None  # None for instance-store AMIs
    image_location: str | None = None  # S3 manifest for instance-store AMIs
    public: bool = False


class PublishRecord(BaseModel):
    """Where one built variant was published: region -> AMI."""

    variant_id: str
    ami_name: str
    image_sha256: str
    regions: dict[str, RegionImage] = Field(default_factory=dict)
