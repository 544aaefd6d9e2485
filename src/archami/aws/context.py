"""What every publish step needs: the build, the names, the settings, the clients, the state, and how to report."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from archami.artifacts import Manifest
from archami.aws.clients import Clients
from archami.aws.images import archami_tags
from archami.aws.state import StateStore
from archami.config.publish import PublishSettings


class UploadProgress(Protocol):
    def begin(self, region: str, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def end(self) -> None: ...


@dataclass
class PublishContext:
    build_dir: Path
    image: Path
    manifest: Manifest
    release_id: str
    ami_name: str
    regions: list[str]  # resolved from settings.regions; the first is the source region
    clients: Clients
    store: StateStore
    settings: PublishSettings
    deprecate_at: datetime | None = None  # from settings.deprecate, fixed when the publish starts
    workers: int = 8
    poll: float = 2.0
    progress: UploadProgress | None = None
    log: Callable[[str], None] = field(default=lambda line: None)
    kernel_ids: dict[str, str] = field(default_factory=dict)  # region -> pv-grub AKI (paravirtual)

    @property
    def source_region(self) -> str:
        return self.regions[0]

    @property
    def family(self) -> str:
        return self.manifest.definition_name

    @property
    def variant_id(self) -> str:
        return self.manifest.variant_id

    @property
    def identity_tags(self) -> dict[str, str]:
        """archami's own tags: what a re-run, sweep or prune finds this publish's resources by."""
        return archami_tags(self.family, self.variant_id, self.release_id)

    @property
    def tags(self) -> dict[str, str]:
        """Every tag a created resource carries: the definition's own, then archami's (which win)."""
        return {**self.settings.tags, **self.identity_tags}

    @property
    def description(self) -> str:
        return (self.manifest.description or f"{self.family} {self.manifest.variant.label}")[:255]

    def s3_key(self, filename: str) -> str:
        return self.settings.s3_key(self.ami_name, filename)

    def token(self, *parts: object) -> str:
        """A ClientToken (<= 64 ASCII chars) stable across re-runs of the same publish step."""
        text = "/".join([self.ami_name, *map(str, parts)])
        return hashlib.sha256(text.encode()).hexdigest()[:64]
