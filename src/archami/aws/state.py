"""The publish state file: every snapshot, import and AMI, per region, recorded the moment it exists.

Written atomically (temp file + rename) under a lock after every change, so a crash at any point leaves
a readable file naming everything created so far; a re-run continues from it.

The steps mark the boundaries around those writes (`boundary`), where a test can SIGKILL the process:
ARCHAMI_CRASH_AT=K kills it at the K-th boundary it passes (1-based); ARCHAMI_CRASH_LOG=FILE appends each
boundary's name, so a test learns how many boundaries a full run has. Both unset: no effect.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from archami.artifacts import read_json, write_json_atomic
from archami.errors import ArchamiError


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RegionState(BaseModel):
    region: str
    source: bool = False  # the region the image was uploaded/registered in; others are copies
    snapshot_id: str | None = None  # source: the uploaded or imported snapshot
    snapshot_complete: bool = False
    upload_attempt: int = 0  # part of StartSnapshot's ClientToken; bumped when a snapshot is abandoned
    s3_object: str | None = None  # "bucket/key" of an S3 upload (import fallback) or bundle manifest
    import_task_id: str | None = None
    ami_id: str | None = None
    ami_available: bool = False
    ami_snapshot_ids: list[str] = Field(default_factory=list)  # snapshots behind the AMI (copies own theirs)
    public: bool = False
    shared: list[str] = Field(default_factory=list)  # accounts, organization and unit ARNs given launch permission
    block_public_access: str | None = None  # "unblocked", "block-new-sharing", "not-implemented"
    deprecate_at: str | None = None
    ssm_parameter: str | None = None
    swept: bool = False


class PublishState(BaseModel):
    release_id: str
    family: str
    variant_id: str
    ami_name: str
    image_sha256: str
    source_region: str
    method: str
    created_at: str = Field(default_factory=now_iso)
    updated_at: str = Field(default_factory=now_iso)
    bytes_uploaded: int = 0
    blocks_uploaded: int = 0
    done: bool = False
    regions: dict[str, RegionState] = Field(default_factory=dict)


class StateStore:
    """Thread-safe holder of one PublishState and its file."""

    def __init__(self, path: Path, state: PublishState) -> None:
        self.path = path
        self.state = state
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path, fresh: PublishState) -> StateStore:
        """Load the state file if it exists (it must describe the same publish), else start `fresh`."""
        if path.exists():
            state = read_json(path, PublishState)
            for field in ("release_id", "variant_id", "ami_name", "image_sha256"):
                if getattr(state, field) != getattr(fresh, field):
                    raise ArchamiError(
                        f"{path}: state file is for {field}={getattr(state, field)!r}, not "
                        f"{getattr(fresh, field)!r}; use another --state file or --release-id"
                    )
            store = cls(path, state)
        else:
            store = cls(path, fresh)
        store.save()
        return store

    def region(self, region: str) -> RegionState:
        with self._lock:
            return self.state.regions[region].model_copy()

    def ensure_region(self, region: str, *, source: bool) -> None:
        with self._lock:
            if region not in self.state.regions:
                self.state.regions[region] = RegionState(region=region, source=source)
                self.save()

    def update_region(self, region: str, change: Callable[[RegionState], None]) -> RegionState:
        with self._lock:
            current = self.state.regions[region]
            change(current)
            self.save()
            return current.model_copy()

    def update(self, change: Callable[[PublishState], None]) -> None:
        with self._lock:
            change(self.state)
            self.save()

    def save(self) -> None:
        with self._lock:
            self.state.updated_at = now_iso()
            write_json_atomic(self.path, self.state)


_crash_lock = threading.Lock()
_boundaries_passed = 0


def boundary(name: str) -> None:
    """A named step boundary of a publish (see the module docstring): a no-op unless a test asks."""
    global _boundaries_passed
    crash_at = os.environ.get("ARCHAMI_CRASH_AT")
    log = os.environ.get("ARCHAMI_CRASH_LOG")
    if not crash_at and not log:
        return
    with _crash_lock:
        _boundaries_passed += 1
        if log:
            with open(log, "a") as f:
                f.write(f"{_boundaries_passed} {name}\n")
        if crash_at and _boundaries_passed == int(crash_at):
            os.kill(os.getpid(), signal.SIGKILL)
