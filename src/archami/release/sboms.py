"""Each release keeps its images' SBOMs beside its record (releases/sbom/<release>/<variant>.cdx.json), so
the site can serve and link them long after the build outputs are gone."""

from __future__ import annotations

import shutil
from pathlib import Path

from archami.image.sbom import SBOM_NAME

SBOM_DIR = "sbom"


def sbom_path(releases_dir: Path, release_id: str, variant_id: str) -> Path:
    return releases_dir / SBOM_DIR / release_id / f"{variant_id}.cdx.json"


def keep_sboms(releases_dir: Path, release_id: str, build_dirs: dict[str, Path]) -> list[Path]:
    """Copy each variant's build SBOM (when it has one) next to the release record."""
    kept = []
    for variant_id, build_dir in sorted(build_dirs.items()):
        source = build_dir / SBOM_NAME
        if source.is_file():
            target = sbom_path(releases_dir, release_id, variant_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            target.chmod(0o644)
            kept.append(target)
    return kept


def site_sboms(releases_dir: Path, out_dir: Path) -> dict[str, str]:
    """Copy the kept SBOMs into the site; returns "<release>/<variant>" -> link relative to the page."""
    links: dict[str, str] = {}
    source = releases_dir / SBOM_DIR
    for path in sorted(source.glob("*/*.cdx.json")) if source.is_dir() else []:
        relative = path.relative_to(releases_dir)
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        links[f"{path.parent.name}/{path.name.removesuffix('.cdx.json')}"] = relative.as_posix()
    return links
