"""`archami demo` (what `make demo` runs): one variant released end to end on this machine.

Build -> audit -> boot test under QEMU -> publish to three regions of a local AWS emulator -> release
record -> site -> a headless Chromium screenshot of the site, saved next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archami.aws.verify import MOTO_UNKEPT
from archami.config import LoadedDefinition
from archami.errors import ArchamiError
from archami.release.browser import PHONE_WINDOW, screenshot
from archami.release.emulator import local_aws
from archami.release.pipeline import Log, ReleaseOptions, ReleaseOutcome, run_release
from archami.release.records import published_records
from archami.release.site import SiteFiles, build_site
from archami.release.stream_files import WrittenStreams, release_key, write_streams
from archami.release.verification import ReleaseVerification

DEMO_VARIANT = "trixie-ebs-hvm-x86_64"  # Debian stable
DEMO_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@dataclass(frozen=True)
class DemoResult:
    outcome: ReleaseOutcome
    site: SiteFiles
    screenshot: Path
    phone_screenshot: Path
    endpoint_url: str
    verification: ReleaseVerification | None = None  # every region re-read after publishing
    streams: WrittenStreams | None = None  # the signed release streams in the site


def run_demo(
    loaded: LoadedDefinition, out: Path, *, variant: str | None = None, regions: list[str] | None = None,
    skip_boot: bool = False, cache_dir: Path | None = None, log: Log = lambda _: None,
) -> DemoResult:
    wanted = variant or (DEMO_VARIANT if any(v.id == DEMO_VARIANT for v in loaded.variants)
                         else loaded.variants[0].id)
    releases_dir = out / "releases"
    with local_aws() as endpoint_url:
        log(f"AWS emulator (moto, server mode) at {endpoint_url}")
        options = ReleaseOptions(
            releases_dir=releases_dir, work_dir=out / "build", variants=[wanted],
            publish_overrides={"regions": regions or DEMO_REGIONS, "public": True}, endpoint_url=endpoint_url,
            skip_boot={wanted} if skip_boot else set(), cache_dir=cache_dir,
            # An unfinished demo release points at an emulator that is gone: start a new one instead.
            new=True,
            # The emulator drops several image attributes (aws/verify.py MOTO_UNKEPT): the record and the page
            # show them as unverified, with the reason; against AWS every check must be Correct.
            accept_unverified=dict(MOTO_UNKEPT),
        )
        outcome = run_release(loaded, options, log)
        verification = outcome.gate.verification if outcome.gate else None
    if outcome.held_back:
        summary = outcome.record.verification if outcome.record else None
        raise ArchamiError(f"demo release {outcome.state.release_id} held back by its verification: "
                           f"{'; '.join(summary.problems if summary else [])}")
    if outcome.record is None:
        failures = "; ".join([*(f"{p.variant_id}: {p.error}" for p in outcome.failed),
                              *(f"{p.variant_id}: skipped: {p.skipped}" for p in outcome.skipped)])
        raise ArchamiError(f"demo release {outcome.state.release_id} failed: {failures}")
    site = build_site(releases_dir, out / "site", name=loaded.definition.name)
    log(f"site written to {site.out_dir}")
    gpg, fingerprint = release_key(out / "release-gnupg", None)  # the demo's own release key
    with gpg:
        streams = write_streams(published_records(releases_dir, loaded.definition.name), site.out_dir, gpg,
                                fingerprint)
    log(f"signed release streams in {streams.directory} (key {fingerprint})")
    shot = screenshot(site.index, site.out_dir / "screenshot.png", (1280, 1000))
    phone = screenshot(site.index, site.out_dir / "screenshot-phone.png", PHONE_WINDOW)
    return DemoResult(outcome, site, shot, phone, endpoint_url, verification, streams)
