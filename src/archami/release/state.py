"""The release state file: which variants of a release are built, audited, boot-tested and published.

Kept at `<releases>/.state/<release id>.json` and rewritten (atomically) after every step, so a release that
failed or was killed is resumed by running the same command again: finished steps are not redone, and the
unfinished release keeps its id instead of taking the day's next one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from archami.artifacts import PublishRecord, read_json, write_json_atomic
from archami.config.publish import PublishSettings
from archami.errors import ArchamiError
from archami.release.records import BootTestResult

STATE_DIR = ".state"
# partial: some variants published (the record says "partial"), the others left as they failed: a release of
# an earlier day is closed so, rather than resumed, when a new day's release starts (release/pipeline.py).
Status = Literal["running", "failed", "complete", "abandoned", "partial"]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class VariantProgress(BaseModel):
    variant_id: str
    build_dir: str | None = None
    built: bool = False
    build_reused: bool = False  # adopted from --builds instead of built by this release
    audit_ok: bool | None = None
    audit_findings: list[str] = Field(default_factory=list)
    boot: BootTestResult | None = None
    published: PublishRecord | None = None
    error: str | None = None  # the last failure, cleared when the step succeeds
    failed_step: str | None = None  # the step of that failure
    skipped: str | None = None  # why this variant cannot be published (bootability.py): not built or not published
    seconds: dict[str, float] = Field(default_factory=dict)  # step -> wall time of its last run

    @property
    def done(self) -> bool:
        return self.published is not None and bool(self.published.regions)

    @property
    def failed(self) -> bool:
        """Neither published nor skipped: what a re-run of the release retries."""
        return not self.done and self.skipped is None


class ReleaseState(BaseModel):
    release_id: str
    definition_name: str
    definition_path: str
    definition_sha256: str
    publish: PublishSettings = Field(default_factory=PublishSettings)  # [publish] with the flags applied
    status: Status = "running"
    started_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    attempts: int = 0  # runs of `archami release` on this release (the first, then each resume)
    variants: dict[str, VariantProgress] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _regions_and_public_moved(cls, data: Any) -> Any:
        """State files written before the publish settings model kept only these two."""
        if isinstance(data, dict) and ("regions" in data or "public" in data):
            data = dict(data)
            regions = data.pop("regions", None)
            old = {"regions": "all" if regions in (None, ["all"]) else regions, "public": data.pop("public", False)}
            data.setdefault("publish", old)
        return data


def state_dir(releases_dir: Path) -> Path:
    return releases_dir / STATE_DIR


def state_path(releases_dir: Path, release_id: str) -> Path:
    return state_dir(releases_dir) / f"{release_id}.json"


def save_state(releases_dir: Path, state: ReleaseState) -> None:
    state.updated_at = utc_now()
    write_json_atomic(state_path(releases_dir, state.release_id), state)


def load_states(releases_dir: Path) -> list[ReleaseState]:
    states = []
    for path in sorted(state_dir(releases_dir).glob("*.json")):
        states.append(read_json(path, ReleaseState))
    return states


def unfinished(releases_dir: Path, definition_name: str) -> ReleaseState | None:
    """The newest release of this image family that was started and neither completed nor abandoned."""
    from archami.release.ids import sort_key

    open_states = [s for s in load_states(releases_dir)
                   if s.definition_name == definition_name and s.status in ("running", "failed")]
    return max(open_states, key=lambda s: sort_key(s.release_id)) if open_states else None


@contextmanager
def release_lock(releases_dir: Path) -> Iterator[None]:
    """One `archami release` at a time per releases directory: two would pick the same id."""
    state_dir(releases_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir(releases_dir) / "lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchamiError(f"another `archami release` is running on {releases_dir}") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process is killed
