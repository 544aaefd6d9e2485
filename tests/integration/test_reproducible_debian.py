"""The Debian example built twice -- the session's build and one more, later, in another build directory,
from the warm root cache -- gives the same image.raw bytes; a deliberate change is reported with its file."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from build_support import CACHE_DIR, DEBIAN_EXAMPLE, DEBIAN_VARIANT

from archami.artifacts import BuildResult
from archami.config import load_definition, select
from archami.image.compare import compare_images
from archami.image.pipeline import build_variant

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture(scope="module")
def second_build(debian_build: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    loaded = load_definition(DEBIAN_EXAMPLE)
    variant = select(loaded.variants, DEBIAN_VARIANT)[0]
    return build_variant(loaded, variant, tmp_path_factory.mktemp("second-build-elsewhere"), CACHE_DIR)


def test_two_builds_give_the_same_image(
    debian_build: BuildResult, second_build: BuildResult, record_property: pytest.RecordProperty
) -> None:
    first, second = debian_build.manifest, second_build.manifest
    record_property("builds", [(first.image_sha256, first.build_seconds), (second.image_sha256, second.build_seconds)])
    for label, build in (("first", debian_build), ("second", second_build)):
        m = build.manifest
        print(f"\n{label:6} {m.image_sha256} {m.build_seconds:6.1f} s built {m.built_at} in {build.out_dir}", end="")
    assert second_build.out_dir.parent != debian_build.out_dir.parent
    assert second.built_at != first.built_at  # another wall-clock time (the manifest, beside the image, says so)
    assert second.root_cache_hit  # the same package set: the root the first build cached
    assert first.source_date_epoch == second.source_date_epoch is not None
    assert _sha256(debian_build.image) == _sha256(second_build.image) == first.image_sha256 == second.image_sha256
    assert compare_images(debian_build.image, second_build.image) is None


def test_a_deliberate_difference_is_reported_with_its_file(debian_build: BuildResult, tmp_path: Path) -> None:
    changed = tmp_path / "changed.raw"
    subprocess.run(["cp", "--sparse=always", str(debian_build.image), str(changed)], check=True)
    root = next(p.start for p in debian_build.manifest.partitions if p.role == "root")
    motd = tmp_path / "motd"
    motd.write_text("a file the build did not write\n")
    device = f"{changed}?offset={root}"
    subprocess.run(["debugfs", "-w", "-R", "rm /etc/motd", device], check=True, capture_output=True)
    subprocess.run(["debugfs", "-w", "-R", f"write {motd} /etc/motd", device], check=True, capture_output=True)
    difference = compare_images(debian_build.image, changed)
    assert difference is not None and difference.first_file is not None
    assert difference.region == "partition 3 (ext4)"
    assert difference.first_file.path == "/etc/motd"
    assert f"Size: {len(motd.read_bytes())}" in difference.first_file.detail
