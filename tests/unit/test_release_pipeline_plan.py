"""The release pipeline's pure decisions and its choice of release id (resume or next id), without building."""

from datetime import date
from pathlib import Path

import pytest

from archami.config import load_definition
from archami.errors import ArchamiError
from archami.release.pipeline import ReleaseOptions, open_release
from archami.release.records import load_records, save_record
from archami.release.state import ReleaseState, load_states, release_lock, save_state, unfinished
from archami.release.steps import boot_skip_reason, firmwares_for, parse_variant_list

ROOT = Path(__file__).resolve().parents[2]
DEBIAN = load_definition(ROOT / "examples" / "debian.toml")
ARCH = load_definition(ROOT / "examples" / "arch-seed-columns.toml")
RECORDS = Path(__file__).parent / "release_records"
TODAY = date(2026, 11, 25)


def _options(tmp_path: Path, **kw: object) -> ReleaseOptions:
    return ReleaseOptions(releases_dir=tmp_path / "releases", work_dir=tmp_path / "work", today=TODAY, **kw)  # type: ignore[arg-type]


def test_boot_test_runs_only_where_qemu_can_boot_the_image() -> None:
    reasons = {v.id: boot_skip_reason(v) for v in ARCH.variants}
    assert reasons["ebs-hvm-x86_64"] is None
    assert reasons["ebs-hvm-gpu-x86_64"] is None
    assert "paravirtual" in str(reasons["ebs-paravirtual-x86_64"])
    assert "paravirtual" in str(reasons["instance-store-paravirtual-i686"])
    bookworm = DEBIAN.variants[0]
    assert boot_skip_reason(bookworm) is None
    assert boot_skip_reason(bookworm, skip_requested=True) == "skipped on request (--skip-boot)"


def test_hybrid_images_are_boot_tested_under_both_firmwares() -> None:
    by_id = {v.id: v for v in ARCH.variants}
    assert firmwares_for(by_id["ebs-hvm-x86_64"]) == ["bios", "uefi"]
    assert firmwares_for(by_id["ebs-paravirtual-x86_64"]) == ["bios"]


def test_graviton_variants_are_boot_tested_under_uefi_only() -> None:
    from archami.release.steps import BOOTABLE_ARCHITECTURES
    from archami.vm.qemu import MACHINES

    arm = next(v for v in DEBIAN.variants if v.architecture == "aarch64")
    assert boot_skip_reason(arm) is None and firmwares_for(arm) == ["uefi"]
    assert set(BOOTABLE_ARCHITECTURES) == set(MACHINES)  # the release skips exactly what vm/ cannot boot
    i686 = arm.model_copy(update={"architecture": "i686"})
    assert "i686 guests" in str(boot_skip_reason(i686))


def test_variant_lists() -> None:
    assert parse_variant_list(["a,b", "c", "a"]) == ["a", "b", "c"]
    assert parse_variant_list(None) == []


def test_first_release_of_the_day_then_the_next_id(tmp_path: Path) -> None:
    state, resumed = open_release(DEBIAN, _options(tmp_path), print)
    assert (state.release_id, resumed) == ("2026.11.25", False)
    # A complete release of that id exists: the next one takes '.1'.
    (record,) = [r for r in load_records(RECORDS / "debian") if r.release_id == "2026.11.25.1"]
    save_record(tmp_path / "releases", record.model_copy(update={"release_id": "2026.11.25"}))
    state, resumed = open_release(DEBIAN, _options(tmp_path), print)
    assert (state.release_id, resumed) == ("2026.11.25.1", False)


def test_an_unfinished_release_is_resumed_not_duplicated(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    first, _ = open_release(DEBIAN, _options(tmp_path, publish_overrides={"regions": ["us-east-1"]}), print)
    first.status = "failed"
    save_state(releases, first)
    again, resumed = open_release(DEBIAN, _options(tmp_path), print)
    assert (again.release_id, resumed, again.publish.regions) == ("2026.11.25", True, ["us-east-1"])
    # Another family's unfinished release is not ours to resume.
    other, resumed = open_release(ARCH, _options(tmp_path), print)
    assert (other.release_id, resumed) == ("2026.11.25.1", False)


def test_new_abandons_the_unfinished_release(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    first, _ = open_release(DEBIAN, _options(tmp_path), print)
    save_state(releases, first)
    fresh, resumed = open_release(DEBIAN, _options(tmp_path, new=True), print)
    assert (fresh.release_id, resumed) == ("2026.11.25.1", False)
    assert [s.status for s in load_states(releases)] == ["abandoned"]
    assert unfinished(releases, "debian") is None


def test_a_changed_definition_does_not_resume_silently(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    first, _ = open_release(DEBIAN, _options(tmp_path), print)
    save_state(releases, first.model_copy(update={"definition_sha256": "0" * 64}))
    with pytest.raises(ArchamiError, match=r"different debian\.toml"):
        open_release(DEBIAN, _options(tmp_path), print)


def test_forced_ids(tmp_path: Path) -> None:
    state, _ = open_release(DEBIAN, _options(tmp_path, release_id="2026.12.01.3"), print)
    assert state.release_id == "2026.12.01.3"
    with pytest.raises(ArchamiError, match="not a release id"):
        open_release(DEBIAN, _options(tmp_path, release_id="tuesday"), print)
    (record,) = [r for r in load_records(RECORDS / "debian") if r.release_id == "2026.11.18"]
    save_record(tmp_path / "releases", record)
    with pytest.raises(ArchamiError, match="already complete"):
        open_release(DEBIAN, _options(tmp_path, release_id="2026.11.18"), print)


def test_one_release_at_a_time_per_directory(tmp_path: Path) -> None:
    with (
        release_lock(tmp_path),
        pytest.raises(ArchamiError, match="another `archami release` is running"),
        release_lock(tmp_path),
    ):
        pass
    with release_lock(tmp_path):  # released on exit
        pass


def test_state_round_trip(tmp_path: Path) -> None:
    state = ReleaseState(release_id="2026.11.25", definition_name="debian", definition_path="x",
                         definition_sha256="a" * 64)
    save_state(tmp_path, state)
    assert load_states(tmp_path)[0].release_id == "2026.11.25"
