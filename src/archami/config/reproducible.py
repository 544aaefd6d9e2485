"""The definition's `[reproducible]` table: what pins an image's bytes (its own module so the schema keeps
one line for it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Reproducible(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_date_epoch: int | None = Field(
        default=None, ge=0, lt=2**32,
        description="Seconds since 1970 that every time stamp in the image is tied to "
                    "(default: the newest package's date).",
    )
    snapshot: str | None = Field(
        default=None,
        description="URL of a dated snapshot of the distro's archive to install from, instead of the mirrors "
                    "(Debian's snapshot archive: .../archive/debian/YYYYMMDDTHHMMSSZ; the Arch Linux Archive: "
                    ".../repos/YYYY/MM/DD/$repo/os/$arch): pins the package set.",
    )

    @field_validator("snapshot")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "file://")):
            raise ValueError("a snapshot is an http(s):// or file:// URL")
        return value
