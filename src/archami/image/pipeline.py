"""build_variant: one variant of a definition -> out_root/<variant.id>/{image.raw, manifest.json, build.log}.

Everything is produced in a hidden staging directory beside the output and renamed into place at the end,
so readers never see a half-written build. On error, Ctrl-C or SIGTERM the staging directory is removed
(the build log is kept as <variant.id>.failed.log); tools that mount run in private mount namespaces, and
the disk is assembled without loop devices, so nothing else can be left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archami.artifacts import AUDIT_REPORT_NAME, IMAGE_NAME, MANIFEST_NAME, AuditReport, BuildResult, write_json_atomic
from archami.bootability import kernel_problem, spec_problem
from archami.bzimage import KernelFacts, KernelImageError, read_kernel_facts
from archami.config.load import LoadedDefinition
from archami.config.spec import ImageSpec
from archami.config.variant import Variant
from archami.distro import backend_for
from archami.distro.base import BuildContext, DistroBackend
from archami.distro.licences import package_licences
from archami.errors import ArchamiError
from archami.foreign import emulated_cpu, ensure_foreign_exec
from archami.image import disk, reproducible
from archami.image.cache import DEFAULT_CACHE_DIR, MAX_ROOT_AGE, RootCache, cache_inputs, cache_key
from archami.image.grub import find_boot_files
from archami.image.layout import DiskLayout, plan_layout
from archami.image.layout import kernel_cmdline as make_cmdline
from archami.image.manifest import make_manifest, sparse_sha256
from archami.image.sbom import SBOM_NAME, make_sbom, write_sbom
from archami.image.steps import DISK_STAGES, EC2_STEPS, ROOT_SUBSTAGES, StepEnv, step_name
from archami.runner import sigterm_interrupts, spawn

LOG_NAME = "build.log"
Progress = Callable[[str], None]


class AuditFailed(ArchamiError):
    pass


def _logger(path: Path, variant_id: str) -> tuple[logging.Logger, logging.Handler]:
    log = logging.getLogger(f"archami.image.{variant_id}.{id(path)}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    return log, handler


SCRATCH_ENV = "ARCHAMI_SCRATCH"
_SCRATCH_MIN_FREE = 3 * 1024**3


def _make_work_dir(staging: Path) -> Path:
    """Where the image root is unpacked and worked on: RAM (/dev/shm, or $ARCHAMI_SCRATCH) when it has
    room, since unpacking and deleting ~20k files on a shared disk cost more than the rest of a
    config-only rebuild; else inside the staging directory. staging/work always leads there."""
    link = staging / "work"
    for base in [Path(os.environ[SCRATCH_ENV])] if os.environ.get(SCRATCH_ENV) else [Path("/dev/shm")]:
        try:
            room = shutil.disk_usage(base).free
        except OSError:
            continue
        if room >= _SCRATCH_MIN_FREE and os.access(base, os.W_OK):
            work = Path(tempfile.mkdtemp(prefix=f"archami-{staging.name.lstrip('.')}-", dir=base))
            link.symlink_to(work)
            return work
    link.mkdir()
    return link


def _remove_work_dir(staging: Path) -> None:
    link = staging / "work"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)
        link.unlink()
    elif link.exists():
        shutil.rmtree(link, ignore_errors=True)


def _remove_stale_staging(out_root: Path, variant_id: str) -> None:
    """A build killed with SIGKILL cannot clean up after itself (mounts and loop devices cannot be
    left: there are none outside private namespaces); its staging directory is removed by the next build
    of the same variant once the process that owned it is gone."""
    for stale in out_root.glob(f".{variant_id}.*.partial"):
        try:
            owner = int((stale / "pid").read_text())
            os.kill(owner, 0)
            continue  # still building
        except (OSError, ValueError):
            _remove_work_dir(stale)
            shutil.rmtree(stale, ignore_errors=True)


def _publish(staging: Path, final: Path) -> None:
    """Rename the finished build into place, replacing an older one with two renames."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{time.time_ns()}")
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _audit(image: Path, log: logging.Logger) -> AuditReport:
    from archami.audit import audit_image

    report = audit_image(image)
    for finding in report.findings:
        log.info("audit finding: %s %s %s", finding.rule, finding.path, finding.detail)
    if not report.ok:
        shown = "; ".join(f"{f.rule} {f.path}" for f in report.findings[:5])
        raise AuditFailed(f"the image failed its audit ({len(report.findings)} findings): {shown}")
    return report


def _prepare_root(
    ctx: BuildContext, backend: DistroBackend, cache: RootCache, refresh: bool, notify: Progress
) -> tuple[str, bool]:
    """Unpack the cached root for these inputs, or bootstrap one and cache it. Returns (key, cache hit)."""
    inputs = cache_inputs(backend, ctx.spec)
    key = cache_key(inputs)
    cached = None if refresh else cache.lookup(ctx.spec.variant, key)
    # Only on a miss: was there a root for this key that lookup passed over for its age?
    if cached is None and not refresh and (created := cache.created(cache.tarball(ctx.spec.variant, key))):
        made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created))
        ctx.log.info("the cached root for this key was bootstrapped %s, more than %d h ago: bootstrapping afresh",
                     made, MAX_ROOT_AGE // 3600)
    restore, bootstrap, store = ROOT_SUBSTAGES
    if cached is not None:
        notify(restore)
        ctx.log.info("step: %s (%s)", restore, cached.name)
        cache.restore(cached, ctx.root, ctx.log)
        return key, True
    notify(bootstrap)
    ctx.log.info("step: %s (root cache key %s)", bootstrap, key)
    backend.bootstrap(ctx)
    notify(store)
    ctx.log.info("step: %s", store)
    cache.store(ctx.spec.variant, key, inputs, ctx.root, ctx.log)
    return key, False


def _assemble_and_check(
    ctx: BuildContext, layout: DiskLayout, staging: Path, image: Path, notify: Progress, epoch: int
) -> tuple[str, AuditReport]:
    """Write the disk image to `image`, audit it, and return its sha256 and audit; the root tree is deleted."""
    assemble, audit, manifest = DISK_STAGES
    in_ram = (staging / "work").is_symlink()
    # In RAM, mkfs writes without waiting for the shared disk; the result is then copied out
    # with `cp --sparse=always`, which also leaves every all-zero block of the copy a hole.
    assembled = ctx.work / IMAGE_NAME if in_ram else image
    notify(assemble)
    ctx.log.info("step: %s (%s)", assemble, layout.scheme)
    report = disk.assemble(assembled, layout, ctx.root, ctx.work, ctx.log, epoch, ctx.spec.architecture)
    ctx.log.info("image: %d bytes, %d allocated before copying out", report.image_size, report.used_bytes)
    # Independent jobs at once: delete the root tree (tens of thousands of files), copy the image out,
    # hash it (hashlib releases the GIL) and audit it.
    jobs = [spawn(["rm", "-rf", "--one-file-system", ctx.root])]
    if in_ram:
        jobs.append(spawn(["cp", "--sparse=always", assembled, image]))
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(sparse_sha256, assembled)
        try:
            notify(audit)
            ctx.log.info("step: %s", audit)
            audited = _audit(assembled, ctx.log)
            notify(manifest)
            digest = hashing.result()
        finally:
            codes = [job.wait() for job in jobs]
    if any(codes):
        raise ArchamiError(f"deleting the root or copying the image out failed (exit codes {codes})")
    _remove_work_dir(staging)
    return digest, audited.model_copy(update={"target": str(image), "image_sha256": digest})


def _kernel_facts(root: Path, variant: Variant, log: logging.Logger) -> KernelFacts | None:
    """What the boot loader will load (publish refuses a paravirtual image pv-grub cannot boot). Only x86
    kernels are bzImages; an arm64 Image has no such header, and nothing needs it."""
    try:
        facts = read_kernel_facts(root, find_boot_files(root).kernel)
    except KernelImageError as exc:
        if variant.virtualization == "paravirtual":
            raise
        log.info("kernel not inspected: %s", exc)
        return None
    problem = kernel_problem(facts, variant)
    log.info("kernel %s: Linux %s, %s-compressed%s", facts.path, facts.release, facts.compression,
             f"; NOT PUBLISHABLE: {problem}" if problem else "")
    return facts


def build_variant(
    loaded: LoadedDefinition,
    variant: Variant | ImageSpec,
    out_root: Path,
    cache_dir: Path | None = None,
    *,
    refresh_root: bool = False,
    progress: Progress | None = None,
) -> BuildResult:
    """Build one variant. `refresh_root` bootstraps afresh even when the root cache has this root."""
    if os.geteuid() != 0:
        # Unpacking a root keeps file owners, and the image's own tools run chrooted: both need root.
        raise ArchamiError("archami build needs root (file ownership in the image, chroot); run it as root")
    started = time.monotonic()
    spec = variant if isinstance(variant, ImageSpec) else loaded.spec(variant)
    settings = loaded.definition.reproducible
    spec = reproducible.pin_snapshot(spec, settings.snapshot)
    variant = spec.variant
    refused = spec_problem(spec)
    if refused:
        raise ArchamiError(f"{variant.id} is not built: {refused} (`archami plan` shows what can be released)")
    notify = progress or (lambda _name: None)
    out_root = Path(out_root).absolute()
    out_root.mkdir(parents=True, exist_ok=True)
    cache = RootCache(Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR)
    cache.directory.mkdir(parents=True, exist_ok=True)
    final = out_root / variant.id
    _remove_stale_staging(out_root, variant.id)
    staging = Path(tempfile.mkdtemp(prefix=f".{variant.id}.", suffix=".partial", dir=out_root))
    (staging / "pid").write_text(str(os.getpid()))
    log, handler = _logger(staging / LOG_NAME, variant.id)
    failed_log = out_root / f"{variant.id}.failed.log"
    try:
        with sigterm_interrupts(), emulated_cpu(spec.architecture, log):
            work = _make_work_dir(staging)
            root = work / "root"
            backend = backend_for(variant.distro)
            ctx = BuildContext(spec, root, work, cache.directory, log)
            log.info("archami build %s %s (definition sha256 %s)", variant.name, variant.id, loaded.sha256)

            layout = plan_layout(spec.disk.size, virtualization=variant.virtualization, esp_size=spec.disk.esp_size,
                                 seed=f"{loaded.sha256}/{variant.id}", architecture=variant.architecture)
            cmdline = make_cmdline(layout, list(spec.kernel.cmdline), variant.virtualization, variant.architecture)

            # The image's own programs (maintainer scripts, initramfs and GRUB tools) run on this host.
            ensure_foreign_exec(spec.architecture, log)
            key, cache_hit = _prepare_root(ctx, backend, cache, refresh_root, notify)
            epoch, epoch_source = reproducible.build_epoch(settings, variant.distro, root)
            # Every tool that honours it (initramfs generators, mtools) sees the same date.
            ctx.env[reproducible.EPOCH_ENV] = str(epoch)
            log.info("SOURCE_DATE_EPOCH=%d (from %s)", epoch, epoch_source)
            env = StepEnv(ctx, backend, layout, cmdline)
            for step in EC2_STEPS:
                notify(step_name(step))
                log.info("step: %s", step_name(step))
                step(env)
            packages = backend.installed_packages(root)
            licences = package_licences(variant.distro, root, [p.name for p in packages])
            kernel = backend.kernel_version(root, spec)
            kernel_facts = _kernel_facts(root, variant, log)
            image = staging / IMAGE_NAME
            digest, audit = _assemble_and_check(ctx, layout, staging, image, notify, epoch)
            write_json_atomic(staging / AUDIT_REPORT_NAME, audit)
            manifest = make_manifest(
                loaded=loaded, spec=spec, layout=layout, cmdline=cmdline, kernel_version=kernel,
                packages=packages, image=image, image_sha256=digest, kernel_facts=kernel_facts,
                build_seconds=time.monotonic() - started, root_cache_key=key, root_cache_hit=cache_hit,
                source_date_epoch=epoch,
            )
            write_json_atomic(staging / MANIFEST_NAME, manifest)
            write_sbom(staging / SBOM_NAME, make_sbom(manifest, licences))
            log.info("built %s in %.1f s", variant.id, manifest.build_seconds)
            handler.close()
            # mkdtemp/mkstemp made these private; a build's outputs are for every stage to read.
            staging.chmod(0o755)
            (staging / "pid").unlink()
            for name in (IMAGE_NAME, MANIFEST_NAME, SBOM_NAME, AUDIT_REPORT_NAME, LOG_NAME):
                (staging / name).chmod(0o644)
            _publish(staging, final)
            failed_log.unlink(missing_ok=True)
    except BaseException as exc:
        log.info("build failed: %s: %s", type(exc).__name__, exc)
        handler.close()
        shutil.copyfile(staging / LOG_NAME, failed_log)
        _remove_work_dir(staging)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        log.removeHandler(handler)
    return BuildResult(
        out_dir=final, image=final / IMAGE_NAME, manifest_path=final / MANIFEST_NAME, manifest=manifest
    )
