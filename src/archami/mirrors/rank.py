"""Ranking measured mirrors, and the measurement file one run writes (merged later per AWS region)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from archami.artifacts import read_json, write_json_atomic
from archami.mirrors.measure import Measurement


class MeasurementRecord(BaseModel):
    url: str
    ok: bool
    latency: float | None = None
    seconds: float | None = None
    size: int = 0
    error: str = ""

    @classmethod
    def of(cls, m: Measurement) -> MeasurementRecord:
        return cls(url=m.url, ok=m.ok, latency=m.latency, seconds=m.seconds, size=m.size, error=m.error)

    def measurement(self) -> Measurement:
        return Measurement(
            url=self.url, ok=self.ok, latency=self.latency, seconds=self.seconds, size=self.size, error=self.error
        )


class MeasurementReport(BaseModel):
    """What `archami mirrors rank --measurements FILE` writes: run it on an instance in each region."""

    region: str | None = None
    measured_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    path: str
    deadline: float
    measurements: list[MeasurementRecord]

    def write(self, path: Path) -> None:
        write_json_atomic(path, self)

    @classmethod
    def read(cls, path: Path) -> MeasurementReport:
        return read_json(path, cls)


def rank(measurements: Iterable[Measurement]) -> list[Measurement]:
    """Mirrors that answered, fastest whole download first (as rankmirrors orders), ties by latency, URL."""
    ok = [m for m in measurements if m.ok and m.seconds is not None]
    return sorted(ok, key=lambda m: (m.seconds or 0.0, m.latency or 0.0, m.url))


def failed(measurements: Sequence[Measurement]) -> list[Measurement]:
    return [m for m in measurements if not m.ok]
