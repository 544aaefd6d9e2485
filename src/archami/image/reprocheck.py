"""`archami build --check-reproducible`: build a variant twice, in two build directories at two times, and
say whether the images are the same bytes -- or the first file in which they differ."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from archami.artifacts import BuildResult
from archami.config.load import LoadedDefinition
from archami.config.spec import ImageSpec
from archami.config.variant import Variant
from archami.image.compare import Difference, compare_images
from archami.image.pipeline import Progress, build_variant

SECOND_SUFFIX = ".second-build"


@dataclass(frozen=True)
class ReproducibilityReport:
    first: BuildResult
    second: BuildResult  # kept in <out>/<variant>.second-build/ only when the images differ
    difference: Difference | None

    @property
    def reproducible(self) -> bool:
        return self.difference is None and self.first.manifest.image_sha256 == self.second.manifest.image_sha256


def check_reproducible(
    loaded: LoadedDefinition, variant: Variant | ImageSpec, out_root: Path, cache_dir: Path | None = None,
    *, progress: Progress | None = None,
) -> ReproducibilityReport:
    """Build twice (the second from the root cache the first filled) and compare the two image.raw files."""
    first = build_variant(loaded, variant, out_root, cache_dir, progress=progress)
    second_root = Path(out_root).absolute() / f".{first.out_dir.name}{SECOND_SUFFIX}"
    shutil.rmtree(second_root, ignore_errors=True)
    second = build_variant(loaded, variant, second_root, cache_dir, progress=progress)
    difference = None
    if second.manifest.image_sha256 != first.manifest.image_sha256:
        difference = compare_images(first.image, second.image)
        kept = first.out_dir.with_name(first.out_dir.name + SECOND_SUFFIX)
        shutil.rmtree(kept, ignore_errors=True)
        second.out_dir.rename(kept)
        second = second.model_copy(update={"out_dir": kept, "image": kept / second.image.name,
                                           "manifest_path": kept / second.manifest_path.name})
    else:
        shutil.rmtree(second.out_dir, ignore_errors=True)
    shutil.rmtree(second_root, ignore_errors=True)
    return ReproducibilityReport(first, second, difference)
