"""`archami release`: every variant built, audited, boot-tested and published, then one release record.

Each finished step is written to the release state file at once (see state.py), so running the same
command after a failure or a kill resumes the unfinished release under its own id; a new release on the
same day (after a complete one) takes the next id (`YYYY.MM.DD.1`).

One variant failing does not stop the others. A variant archami knows cannot be published (bootability.py:
e.g. a paravirtual kernel pv-grub cannot load) is skipped, before its build when the definition tells, after
it when the kernel does, and the reason is recorded. The release record is written as soon as one variant is
published: "partial" while another failed (the same command retries only what failed and rewrites the
record, under the same id), "complete" when every variant is published or skipped.

Then the gate (gate.py): the new release is protected from deregistration, every region re-read, and only a
release whose checks are all Correct (or accepted as unverified, for an emulator) reaches the page and the
streams; a held-back one leaves the release open, and the same command verifies it again.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from archami import __version__
from archami.artifacts import (
    IMAGE_NAME,
    MANIFEST_NAME,
    Manifest,
    TestReport,
    read_json,
)
from archami.bootability import manifest_problem, spec_problem
from archami.config import LoadedDefinition, Variant, select
from archami.config.matrix import MatrixError
from archami.config.publish import apply_overrides
from archami.config.spec import ImageSpec
from archami.errors import ArchamiError, ConfigError
from archami.release.adopted import passed_boot_reports
from archami.release.ids import ReleaseId, is_release_id, next_release_id
from archami.release.records import (
    BootTestResult,
    ReleaseRecord,
    UnreleasedVariant,
    VariantInfo,
    VariantRelease,
    VerificationSummary,
    column_order,
    load_record,
    published_records,
    record_path,
    save_record,
)
from archami.release.sboms import keep_sboms
from archami.release.state import (
    ReleaseState,
    VariantProgress,
    load_states,
    release_lock,
    save_state,
    state_dir,
    unfinished,
)
from archami.release.steps import boot_skip_reason, firmwares_for, not_checked_here

if TYPE_CHECKING:
    from archami.release.gate import GateResult

Log = Callable[[str], None]


@dataclass
class ReleaseOptions:
    releases_dir: Path
    work_dir: Path  # build outputs: <work_dir>/<release id>/<variant id>/
    variants: list[str] | None = None  # ids; None: every variant of the definition
    # Flags over the definition's [publish] table (keys of config.publish.FLAG_OF); when resuming, over the
    # settings the unfinished release was started with.
    publish_overrides: dict[str, object] = field(default_factory=dict)
    endpoint_url: str | None = None
    skip_boot: set[str] = field(default_factory=set)  # variant ids, or "all"
    builds_dir: Path | None = None  # adopt finished builds (<dir>/<variant id>/) of this same definition
    cache_dir: Path | None = None
    release_id: str | None = None  # force an id (resume it, or create it if unused)
    new: bool = False  # abandon an unfinished release instead of resuming it
    today: date | None = None
    boot_timeout: float = 600  # seconds to SSH; TCG on a busy 2-core host took 240 s for one boot
    # Post-publish verification (release/gate.py): checks accepted as unverified (check -> reason; only with
    # an endpoint_url), and what to update once the release passes: the page, and signed streams below it.
    accept_unverified: dict[str, str] = field(default_factory=dict)
    site_dir: Path | None = None
    gnupg_home: Path | None = None  # with site_dir: write and sign streams/ with this home's release key
    signing_key: str | None = None


@dataclass
class ReleaseOutcome:
    state: ReleaseState
    resumed: bool
    record: ReleaseRecord | None = None
    record_path: Path | None = None
    gate: GateResult | None = None  # the post-publish verification, once a record was written
    site_index: Path | None = None  # the page, when it was updated
    streams: list[Path] = field(default_factory=list)  # the signed streams, when they were updated

    @property
    def held_back(self) -> bool:
        return self.gate is not None and not self.gate.publishable

    @property
    def failed(self) -> list[VariantProgress]:
        return [p for p in self.state.variants.values() if p.failed]

    @property
    def skipped(self) -> list[VariantProgress]:
        return [p for p in self.state.variants.values() if p.skipped is not None]


def _taken_ids(releases_dir: Path) -> set[str]:
    records = {p.stem for p in releases_dir.glob("*.json") if is_release_id(p.stem)}
    return records | {s.release_id for s in load_states(releases_dir)}


def open_release(loaded: LoadedDefinition, options: ReleaseOptions, log: Log) -> tuple[ReleaseState, bool]:
    """Resume the family's unfinished release, or start the day's next one."""
    releases_dir, name = options.releases_dir, loaded.definition.name
    if options.release_id is not None:
        if not is_release_id(options.release_id):
            raise ArchamiError(f"{options.release_id!r} is not a release id (YYYY.MM.DD or YYYY.MM.DD.N)")
        recorded = record_path(releases_dir, options.release_id)
        if recorded.exists() and load_record(recorded).status == "complete":
            raise ArchamiError(f"release {options.release_id} is already complete ({releases_dir})")
        existing = [s for s in load_states(releases_dir) if s.release_id == options.release_id]
        pending = existing[0] if existing else None
    else:
        pending = unfinished(releases_dir, name)
    if pending is not None and options.new:
        log(f"abandoning unfinished release {pending.release_id} (--new)")
        pending.status = "abandoned"
        save_state(releases_dir, pending)
        pending = None
    today = options.today or datetime.now(UTC).date()
    if (pending is not None and options.release_id is None and ReleaseId.parse(pending.release_id).day < today
            and record_path(releases_dir, pending.release_id).exists()):
        # A partial release of an earlier day (e.g. last week's, a variant failing every time) is left partial:
        # resuming it would hold this week's release back for good. `--release-id` still resumes it.
        log(f"release {pending.release_id} stays partial (recorded); starting a new release")
        pending.status = "partial"
        save_state(releases_dir, pending)
        pending = None
    if pending is not None:
        if pending.definition_name != name:
            raise ArchamiError(f"release {pending.release_id} belongs to {pending.definition_name!r}, not {name!r}")
        if pending.definition_sha256 != loaded.sha256:
            raise ArchamiError(
                f"unfinished release {pending.release_id} was started from a different {loaded.path.name}; "
                "restore that file to resume it, or pass --new to abandon it and start a new release"
            )
        pending.publish = apply_overrides(pending.publish, options.publish_overrides, origin=str(loaded.path))
        pending.status = "running"
        pending.attempts += 1
        log(f"resuming release {pending.release_id} (attempt {pending.attempts})")
        return pending, True
    release_id = options.release_id or next_release_id(today, _taken_ids(releases_dir))
    settings = apply_overrides(loaded.definition.publish, options.publish_overrides, origin=str(loaded.path))
    state = ReleaseState(
        release_id=release_id, definition_name=name, definition_path=str(loaded.path),
        definition_sha256=loaded.sha256, publish=settings, attempts=1,
    )
    log(f"starting release {release_id}")
    return state, False


def _chosen_variants(loaded: LoadedDefinition, wanted: list[str] | None) -> list[Variant]:
    if not wanted:
        return list(loaded.variants)
    try:
        chosen = [select(loaded.variants, w)[0] for w in wanted]
    except MatrixError as exc:
        raise ConfigError(str(loaded.path), exc.key, str(exc)) from None
    return sorted(chosen, key=lambda v: column_order(VariantInfo.from_variant(v)))


class _StepFailed(Exception):
    pass


@contextmanager
def _step(progress: VariantProgress, name: str, save: Callable[[], None], log: Log) -> Iterator[None]:
    """Time a step, and turn its failure into the variant's recorded error so the other variants go on.
    Each step says when it starts and how long it took: the release's progress, per variant and stage."""
    started = time.monotonic()
    log(f"{progress.variant_id}: {name} ...")
    try:
        yield
    except (ArchamiError, OSError) as exc:  # the runner turns every command failure into an ArchamiError
        progress.error, progress.failed_step = f"{name}: {exc}", name
        raise _StepFailed from exc
    except Exception as exc:  # e.g. an AWS client error: one variant's failure must not end the release
        log("".join(traceback.format_exception(exc)).rstrip())
        progress.error, progress.failed_step = f"{name}: {type(exc).__name__}: {exc}", name
        raise _StepFailed from exc
    finally:
        progress.seconds[name] = round(time.monotonic() - started, 1)
        save()
    progress.error, progress.failed_step = None, None
    log(f"{progress.variant_id}: {name} done in {progress.seconds[name]:.1f}s")


def run_release(loaded: LoadedDefinition, options: ReleaseOptions, log: Log = lambda _: None) -> ReleaseOutcome:
    """Run (or resume) a release of `loaded`; returns its state and, once a variant is published, the record
    saved at `<releases_dir>/<id>.json`. Raises nothing for a failed variant: see `outcome.failed`."""
    if options.accept_unverified and options.endpoint_url is None:
        raise ArchamiError("--accept-unverified is only for an endpoint that is not AWS (--endpoint-url): "
                           "AWS answers every check, and each must be Correct")
    options.releases_dir.mkdir(parents=True, exist_ok=True)
    variants = _chosen_variants(loaded, options.variants)
    with release_lock(options.releases_dir):
        state, resumed = open_release(loaded, options, log)
        # Before anything is built: a variant these settings cannot publish would fail only after its build
        # (one that will be skipped anyway needs nothing).
        for v in variants:
            if spec_problem(loaded.spec(v)) is None:
                state.publish.check_can_publish(v.root_device)
        state.publish.deprecation_time(datetime.now(UTC))  # a deprecation date already past
        for v in variants:
            state.variants.setdefault(v.id, VariantProgress(variant_id=v.id))
        save_state(options.releases_dir, state)
        by_id = {spec.id: spec for spec in loaded.specs}
        missing = [vid for vid in state.variants if vid not in by_id]
        if missing:
            raise ArchamiError(f"release {state.release_id} has variants no longer defined: {', '.join(missing)}")
        outcome = ReleaseOutcome(state, resumed)
        try:
            for vid, progress in state.variants.items():
                _run_variant(loaded, by_id[vid], progress, state, options, log)
        finally:
            state.status = "failed" if outcome.failed else "complete"
            if any(p.done for p in state.variants.values()):
                outcome.record = _record(loaded, state, by_id, options.releases_dir)
                outcome.record_path = save_record(options.releases_dir, outcome.record)
                keep_sboms(options.releases_dir, state.release_id,
                           {vid: Path(p.build_dir) for vid, p in state.variants.items() if p.build_dir and p.done})
                log(f"release {state.release_id} ({outcome.record.status}) recorded in {outcome.record_path}")
            save_state(options.releases_dir, state)
        if outcome.record is not None:
            _gate(loaded, outcome, options, log)
        return outcome


def _gate(loaded: LoadedDefinition, outcome: ReleaseOutcome, options: ReleaseOptions, log: Log) -> None:
    """Verify the published release; only then update the page and the streams."""
    from archami.release.gate import gate_release  # boto3 only when there is something to verify

    assert outcome.record is not None
    state = outcome.state
    log(f"release {state.release_id}: verifying every region")
    outcome.gate = gate_release(outcome.record, state.publish, options.releases_dir,
                                endpoint_url=options.endpoint_url, accepted=options.accept_unverified, log=log)
    outcome.record = outcome.gate.record
    if outcome.held_back:
        state.status = "failed"  # the same command verifies again (after the cause is fixed)
        save_state(options.releases_dir, state)
        return
    summary = outcome.gate.record.verification
    if summary is not None and summary.unverified:
        log(f"release {state.release_id}: accepted as unverified: {', '.join(summary.unverified_attributes)}")
    if options.site_dir is not None:
        from archami.release.site import build_site

        outcome.site_index = build_site(options.releases_dir, options.site_dir, name=loaded.definition.name).index
        log(f"release page updated: {outcome.site_index}")
        if options.gnupg_home is not None:
            from archami.release.stream_files import release_key, write_streams

            gpg, fingerprint = release_key(options.gnupg_home, options.signing_key)
            with gpg:
                written = write_streams(published_records(options.releases_dir, loaded.definition.name),
                                        options.site_dir, gpg, fingerprint)
            outcome.streams = written.streams
            log(f"signed streams updated in {written.directory}")


def _skip(progress: VariantProgress, reason: str, log: Log, save: Callable[[], None]) -> None:
    progress.skipped, progress.error, progress.failed_step = reason, None, None
    log(f"{progress.variant_id}: skipped: {reason}")
    save()


def _run_variant(
    loaded: LoadedDefinition, spec: ImageSpec, progress: VariantProgress, state: ReleaseState,
    options: ReleaseOptions, log: Log,
) -> None:
    def save() -> None:
        save_state(options.releases_dir, state)

    variant = spec.variant
    if progress.done:
        log(f"{variant.id}: already published, nothing to do")
        return
    progress.skipped = None  # decided again on every run: the rules may have changed, or the kernel
    refused = spec_problem(spec)
    if refused:
        _skip(progress, refused, log, save)
        return
    try:
        build_dir = _build(loaded, spec, progress, state, options, log, save)
        refused = manifest_problem(read_json(build_dir / MANIFEST_NAME, Manifest))
        if refused:
            _skip(progress, refused, log, save)
            return
        _audit(build_dir, variant, progress, log, save)
        _boot(build_dir, spec, progress, options, log, save)
        _publish(build_dir, variant, progress, state, options, log, save)
    except _StepFailed:
        log(f"{variant.id}: failed: {progress.error}")


def _usable_build(build_dir: Path, sha256: str) -> bool:
    manifest = build_dir / MANIFEST_NAME
    if not manifest.is_file() or not (build_dir / IMAGE_NAME).is_file():
        return False
    return read_json(manifest, Manifest).definition_sha256 == sha256


def _build(
    loaded: LoadedDefinition, spec: ImageSpec, progress: VariantProgress, state: ReleaseState,
    options: ReleaseOptions, log: Log, save: Callable[[], None],
) -> Path:
    variant = spec.variant
    if progress.built and progress.build_dir and _usable_build(Path(progress.build_dir), loaded.sha256):
        return Path(progress.build_dir)
    progress.built, progress.audit_ok, progress.boot = False, None, None  # a new image needs new tests
    if options.builds_dir is not None and _usable_build(options.builds_dir / variant.id, loaded.sha256):
        progress.build_dir, progress.built, progress.build_reused = str(options.builds_dir / variant.id), True, True
        log(f"{variant.id}: using the finished build in {progress.build_dir}")
        save()
        return Path(progress.build_dir)
    from archami.image.pipeline import build_variant  # the build stage (heavy imports only when building)

    log(f"{variant.id}: building")
    with _step(progress, "build", save, log):
        result = build_variant(loaded, spec, options.work_dir / state.release_id, options.cache_dir)
        progress.build_dir, progress.built, progress.build_reused = str(result.out_dir), True, False
    return Path(progress.build_dir)


def _audit(build_dir: Path, variant: Variant, progress: VariantProgress, log: Log, save: Callable[[], None]) -> None:
    if progress.audit_ok:
        return
    from archami.audit import audit_image

    log(f"{variant.id}: auditing {build_dir / IMAGE_NAME}")
    with _step(progress, "audit", save, log):
        report = audit_image(build_dir / IMAGE_NAME)
        progress.audit_ok = report.ok
        progress.audit_findings = [f"{f.rule}: {f.path}" for f in report.findings]
        if not report.ok:
            raise ArchamiError(f"{len(report.findings)} finding(s): {'; '.join(progress.audit_findings[:5])}")


def _boot(
    build_dir: Path, spec: ImageSpec, progress: VariantProgress, options: ReleaseOptions, log: Log,
    save: Callable[[], None],
) -> None:
    variant = spec.variant
    if progress.boot is not None and progress.boot.status in ("passed", "skipped"):
        return
    reason = boot_skip_reason(variant, "all" in options.skip_boot or variant.id in options.skip_boot)
    if reason is not None:
        log(f"{variant.id}: boot test skipped: {reason}")
        progress.boot = BootTestResult(status="skipped", reason=reason)
        save()
        return
    adopted = passed_boot_reports(build_dir, list(firmwares_for(variant))) if progress.build_reused else None
    if adopted is not None:  # booted by the build's own CI job (ci/): the same image, every firmware passed
        log(f"{variant.id}: boot test passed with the build ({', '.join(r.firmware for r in adopted)}): not repeated")
        progress.boot = BootTestResult.from_reports(adopted)
        progress.boot.not_checked = not_checked_here(spec)
        save()
        return
    from archami.vm.boot import boot_test

    reports: list[TestReport] = []
    with _step(progress, "boot", save, log):
        for firmware in firmwares_for(variant):
            log(f"{variant.id}: boot test ({firmware})")

            def stage(text: str, firmware: str = firmware) -> None:
                log(f"{variant.id}: boot ({firmware}): {text}")

            # boot_test writes boot-test-<firmware>.json (and the serial log on failure) beside the image.
            reports.append(boot_test(build_dir / IMAGE_NAME, firmware, timeout=options.boot_timeout, progress=stage))
        progress.boot = BootTestResult.from_reports(reports)
        if progress.boot.status != "passed":
            raise ArchamiError(f"boot test failed ({progress.boot.reason or 'see the serial log'})")
        progress.boot.not_checked = not_checked_here(spec)
        if progress.boot.not_checked:
            log(f"{variant.id}: booted; not tested here: {', '.join(progress.boot.not_checked)}")


def _publish(
    build_dir: Path, variant: Variant, progress: VariantProgress, state: ReleaseState, options: ReleaseOptions,
    log: Log, save: Callable[[], None],
) -> None:
    from archami.aws.publish import publish

    regions = state.publish.regions
    log(f"{variant.id}: publishing to {'every enabled region' if regions == 'all' else ', '.join(regions)}")
    publish_state = state_dir(options.releases_dir) / f"{state.release_id}.publish" / f"{variant.id}.json"
    with _step(progress, "publish", save, log):
        progress.published = publish(
            build_dir, state.publish, endpoint_url=options.endpoint_url, state_path=publish_state,
            release_id=state.release_id, log=lambda line: log(f"{variant.id}: {line}"),
        )


def _unreleased(progress: VariantProgress, spec: ImageSpec) -> UnreleasedVariant:
    info = VariantInfo.from_spec(spec)
    if progress.skipped is not None:
        return UnreleasedVariant(variant=info, outcome="skipped", reason=progress.skipped)
    reason = progress.error or "not finished (interrupted)"
    if progress.failed_step and reason.startswith(f"{progress.failed_step}: "):
        reason = reason.removeprefix(f"{progress.failed_step}: ")
    return UnreleasedVariant(variant=info, outcome="failed", step=progress.failed_step, reason=reason)


def _record(loaded: LoadedDefinition, state: ReleaseState, by_id: dict[str, ImageSpec],
            releases_dir: Path) -> ReleaseRecord:
    """Every variant's outcome: the published ones with their AMIs, the others with why they are not.
    Not verified yet (release/gate.py judges it next); lifecycle events of an earlier attempt are kept."""
    earlier = record_path(releases_dir, state.release_id)
    lifecycle = load_record(earlier).lifecycle if earlier.is_file() else []
    variants, not_released = [], []
    for vid, progress in state.variants.items():
        if not progress.done:
            not_released.append(_unreleased(progress, by_id[vid]))
            continue
        assert progress.build_dir and progress.boot and progress.published
        manifest = read_json(Path(progress.build_dir) / MANIFEST_NAME, Manifest)
        variants.append(VariantRelease.assemble(manifest, progress.boot, progress.published, by_id[vid]))
    return ReleaseRecord(
        release_id=state.release_id, definition_name=loaded.definition.name, distro=loaded.definition.distro,
        description=loaded.definition.description, definition_sha256=loaded.sha256,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), archami_version=__version__,
        status="partial" if any(p.failed for p in state.variants.values()) else "complete",
        variants=sorted(variants, key=lambda v: column_order(v.variant)),
        not_released=sorted(not_released, key=lambda u: column_order(u.variant)),
        verification=VerificationSummary.pending(), lifecycle=lifecycle,
    )
