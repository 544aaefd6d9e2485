"""`archami release`, `archami site`, `archami latest`, `archami demo`: the release stage."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from archami.cli import args as A  # argument checks: callback=A.positive
from archami.cli.app import app, console, err_console
from archami.cli.publish_flags import publish_flags
from archami.config import load_definition
from archami.config.publish import DEFAULT_SSM_PREFIX
from archami.errors import ArchamiError
from archami.release.pipeline import ReleaseOptions, ReleaseOutcome, run_release
from archami.release.records import ReleaseRecord
from archami.release.steps import parse_variant_list
from archami.release.table import release_table

DefinitionArg = Annotated[Path, typer.Argument(help="Image definition (TOML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ReleasesOpt = Annotated[
    Path, typer.Option("--releases", help="Directory of release records (<id>.json).", callback=A.output_dir)
]
EndpointOpt = Annotated[
    str | None, typer.Option("--endpoint-url", help="Send every AWS call to this endpoint (a local emulator).")
]


def _log(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    err_console.print(f"[dim]{stamp}[/] {escape(message)}", highlight=False, soft_wrap=True)


def ami_table(record: ReleaseRecord) -> Table:
    """The release as the seed's table: regions as rows, variants as columns, empty where missing."""
    table = release_table(record)
    out = Table(title=f"Release {record.release_id}")
    out.add_column("region")
    for column in table.columns:
        out.add_column(column.label, no_wrap=True)
    for region, cells in table.rows:
        out.add_row(region, *[c.text for c in cells])
    return out


def summary_table(outcome: ReleaseOutcome) -> Table:
    state = outcome.state
    resumed = f" (resumed, attempt {state.attempts})" if outcome.resumed else ""
    out = Table(title=f"release {state.release_id}: {state.status}{resumed}")
    for column in ("variant", "build", "audit", "boot test", "published", "error"):
        out.add_column(column, overflow="fold")
    for vid, p in state.variants.items():
        build = ("reused " if p.build_reused else "built ") + (f"{p.seconds['build']:.0f}s" if "build" in p.seconds
                                                               else "") if p.built else "-"
        audit = {None: "-", True: "clean", False: f"{len(p.audit_findings)} finding(s)"}[p.audit_ok]
        boot = "-" if p.boot is None else p.boot.shown + (
            " " + ", ".join(f"{r.firmware} {r.boot_to_ssh_seconds}s" for r in p.boot.runs) if p.boot.runs else "")
        published = f"{len(p.published.regions)} region(s)" if p.published else "-"
        out.add_row(vid, build, audit, boot, published, p.error or (f"skipped: {p.skipped}" if p.skipped else ""))
    return out


def _outcome_json(outcome: ReleaseOutcome) -> dict[str, object]:
    return {
        "release_id": outcome.state.release_id,
        "status": outcome.state.status,
        "resumed": outcome.resumed,
        "record": str(outcome.record_path) if outcome.record_path else None,
        "record_status": outcome.record.status if outcome.record else None,
        "verification": outcome.record.verification.model_dump(mode="json")
        if outcome.record and outcome.record.verification else None,
        "site": str(outcome.site_index) if outcome.site_index else None,
        "streams": [str(p) for p in outcome.streams],
        "state": outcome.state.model_dump(mode="json"),
    }


@app.command()
@publish_flags
def release(
    file: DefinitionArg,
    variant: Annotated[list[str] | None, typer.Option("--variant", help="Variant id (repeat or a,b); all.")] = None,
    endpoint_url: EndpointOpt = None,
    skip_boot: Annotated[
        list[str] | None, typer.Option("--skip-boot", help="Variant id whose boot test is skipped ('all').")
    ] = None,
    releases_dir: ReleasesOpt = Path("releases"),
    work_dir: Annotated[
        Path, typer.Option("--work", help="Build outputs: WORK/<release id>/<variant>.", callback=A.output_dir)
    ] = Path("out/release"),
    builds_dir: Annotated[
        Path | None, typer.Option("--builds", help="Use finished builds in DIR/<variant>/ of this same definition.",
                                  callback=A.existing_dir)
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache", help="Package cache (default: the build's).", callback=A.output_dir)
    ] = None,
    release_id: Annotated[
        str | None, typer.Option("--release-id", help="Use this id (resume or create).", callback=A.file_id)
    ] = None,
    new: Annotated[bool, typer.Option("--new", help="Abandon an unfinished release; start a new one.")] = False,
    boot_timeout: Annotated[
        float, typer.Option("--boot-timeout", help="Seconds a boot may take to SSH.", callback=A.seconds)
    ] = 600,
    accept_unverified: Annotated[
        list[str] | None, typer.Option(
            "--accept-unverified", metavar="CHECK,...|moto",
            help="With --endpoint-url only: checks the endpoint cannot answer, recorded and shown as unverified "
                 "instead of holding the release back ('moto': every attribute that emulator drops).")
    ] = None,
    site_dir: Annotated[
        Path | None, typer.Option("--site", help="Update this release page once every check is Correct.",
                                  callback=A.output_dir)
    ] = None,
    gnupg_home: Annotated[
        Path | None, typer.Option("--gnupg-home", help="With --site: sign SITE/streams/ with this home's release key.",
                                  callback=A.output_dir)
    ] = None,
    stream_key: Annotated[
        str | None, typer.Option("--stream-key", help="Release key in --gnupg-home (id or fingerprint).")
    ] = None,
    as_json: JsonOpt = False,
    *,
    overrides: dict[str, object],
) -> None:
    """Build, audit, boot-test and publish every variant, write releases/<id>.json, verify every region, and
    only then update the page (--site) and streams. Re-run to resume."""
    from archami.release.verification import parse_accepted

    loaded = load_definition(file)
    options = ReleaseOptions(
        releases_dir=releases_dir, work_dir=work_dir, variants=parse_variant_list(variant) or None,
        publish_overrides=overrides, endpoint_url=endpoint_url, skip_boot=set(parse_variant_list(skip_boot)),
        builds_dir=builds_dir, cache_dir=cache_dir, release_id=release_id, new=new, boot_timeout=boot_timeout,
        accept_unverified=parse_accepted(accept_unverified or []), site_dir=site_dir, gnupg_home=gnupg_home,
        signing_key=stream_key,
    )
    outcome = run_release(loaded, options, _log)
    if as_json:
        print(json.dumps(_outcome_json(outcome), indent=2))
    else:
        console.print(summary_table(outcome))
        if outcome.record is not None:
            console.print(ami_table(outcome.record))
            console.print(f"release record: {outcome.record_path}")
    rid = outcome.state.release_id
    if outcome.held_back and outcome.gate is not None:
        from archami.cli.verify_published import verification_table

        if not as_json:
            err_console.print(verification_table(outcome.gate.verification, outcome.gate.record.verification))
        summary = outcome.gate.record.verification
        problems = summary.problems if summary else []
        raise ArchamiError(f"release {rid} held back, the page and streams not updated: {len(problems)} check(s) "
                           f"not Correct: {'; '.join(problems[:3])}{' ...' if len(problems) > 3 else ''}")
    if outcome.failed:
        failed = ", ".join(p.variant_id for p in outcome.failed)
        what = "partial (recorded)" if outcome.record is not None else "unfinished"
        raise ArchamiError(f"release {rid} is {what}: {failed} failed; run the same command to retry them")
    if outcome.record is None:
        raise ArchamiError(f"release {rid}: nothing to release, every variant was skipped (see `archami plan`)")


@app.command()
def site(
    releases_dir: ReleasesOpt = Path("releases"),
    out: Annotated[Path, typer.Option("--out", help="Output directory for the site.", callback=A.output_dir)] = Path(
        "out/site"
    ),
    name: Annotated[str | None, typer.Option("--name", help="Image family, when DIR holds several.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Page title (default: the description).")] = None,
    history: Annotated[int, typer.Option("--history", min=0, help="Older releases shown on the page.")] = 5,
    shot: Annotated[bool, typer.Option("--screenshot", help="Save screenshot.png (headless Chromium).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Render index.html, releases.json and releases.md from the release records."""
    from archami.release.browser import screenshot
    from archami.release.site import build_site

    files = build_site(releases_dir, out, name=name, title=title, history=history)
    picture = screenshot(files.index, out / "screenshot.png") if shot else None
    if as_json:
        print(json.dumps({"index": str(files.index), "json": str(files.json), "markdown": str(files.markdown),
                          "screenshot": str(picture) if picture else None, "releases": files.release_ids}, indent=2))
        return
    console.print(f"site: {files.index} ({len(files.release_ids)} release(s)); {files.json}; {files.markdown}")
    if picture:
        console.print(f"screenshot: {picture}")


@app.command()
def latest(
    region: Annotated[str, typer.Option("--region", help="AWS region.")],
    variant: Annotated[str, typer.Option("--variant", help="Variant id, e.g. trixie-ebs-hvm-x86_64.")],
    arch: Annotated[
        str | None, typer.Option("--arch", help="The variant's AMI for this architecture instead: x86_64 or arm64.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Image family (definition name).")] = None,
    releases_dir: Annotated[
        Path | None,
        typer.Option("--releases", help="Look in these release records first (AWS only when they lack it).",
                     callback=A.existing_dir),
    ] = None,
    endpoint_url: EndpointOpt = None,
    owner: Annotated[str | None, typer.Option("--owner", help="AMI owner account for describe-images.")] = None,
    ssm_prefix: Annotated[
        str, typer.Option("--ssm-prefix", help="SSM path the release was published under ([publish] ssm_prefix).")
    ] = DEFAULT_SSM_PREFIX,
    stream: Annotated[str | None, typer.Option("--stream", help="Read this release stream (URL or file).")] = None,
    key: Annotated[list[Path] | None, typer.Option("--key", help="Verify the stream with this key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the newest AMI id of a variant in a region: release records, then SSM, then describe-images."""
    if arch is not None:
        from archami.release.lookup import variant_for_architecture

        variant = variant_for_architecture(variant, arch)
    if stream is not None:  # a published stream: no AWS credentials needed
        from archami.cli.verify_cmds import latest_from_stream

        return latest_from_stream(stream, region, variant, key, as_json)
    from archami.release.lookup import latest_from_records

    found = latest_from_records(releases_dir, region, variant, name) if releases_dir is not None else None
    if found is not None:
        ami_id, source, rid = found.image.ami_id, "records", found.release_id
    else:
        from archami.aws.published import latest_ami

        if releases_dir is not None:
            err_console.print(f"{variant} in {region} is not in the records in {releases_dir}: asking AWS")

        ami = latest_ami(
            region, variant, family=name, endpoint_url=endpoint_url, owner=owner or "self", ssm_prefix=ssm_prefix
        )
        if ami is None:
            raise ArchamiError(f"no AMI of variant {variant!r} found in {region}")
        ami_id, source, rid = ami, "aws", None
    if as_json:
        print(json.dumps({"region": region, "variant": variant, "ami_id": ami_id, "source": source,
                          "release_id": rid}))
    else:
        print(ami_id)


@app.command()
def demo(
    file: DefinitionArg,
    out: Annotated[Path, typer.Option("--out", help="Where everything goes.", callback=A.output_dir)] = Path(
        "out/demo"
    ),
    variant: Annotated[str | None, typer.Option("--variant", help="Variant id (default: trixie ebs hvm).")] = None,
    skip_boot: Annotated[bool, typer.Option("--skip-boot", help="Do not boot-test under QEMU.")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache", help="Package cache (default: the build's).", callback=A.output_dir)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Release one variant to three regions of a local AWS emulator, build the site and screenshot it."""
    from archami.release.demo import run_demo

    loaded = load_definition(file)
    result = run_demo(loaded, out, variant=variant, skip_boot=skip_boot, cache_dir=cache_dir, log=_log)
    outcome = result.outcome
    assert outcome.record is not None  # run_demo raises otherwise
    if as_json:
        from archami.cli.output import print_json

        verification = result.verification
        print_json({**_outcome_json(outcome), "site": str(result.site.index.resolve()),
                    "screenshots": [str(result.screenshot.resolve()), str(result.phone_screenshot.resolve())],
                    "streams": str(result.streams.directory.resolve()) if result.streams is not None else None,
                    "verified": verification.ok if verification is not None else None})
        return
    console.print(summary_table(outcome))
    console.print(ami_table(outcome.record))
    paths = Table(title="demo outputs", show_header=False)
    paths.add_column("what")
    paths.add_column("where", overflow="fold")
    for progress in outcome.state.variants.values():
        build_dir = Path(progress.build_dir or "")
        paths.add_row(f"image ({progress.variant_id})", str((build_dir / "image.raw").resolve()))
        paths.add_row("manifest", str((build_dir / "manifest.json").resolve()))
    for v in outcome.record.variants:
        paths.add_row(f"image size / used ({v.variant.id})", f"{v.image_size:,} B / {v.used_bytes:,} B")
    paths.add_row("release record", str(Path(str(outcome.record_path)).resolve()))
    paths.add_row("site", str(result.site.index.resolve()))
    paths.add_row("screenshot", str(result.screenshot.resolve()))
    paths.add_row("screenshot (phone)", str(result.phone_screenshot.resolve()))
    if result.streams is not None:
        paths.add_row("release streams (signed)", str(result.streams.directory.resolve()))
    console.print(paths)
    if result.verification is not None:
        from archami.cli.verify_published import verification_table

        console.print(verification_table(result.verification, outcome.record.verification))
