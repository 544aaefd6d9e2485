"""`archami stream` (write and sign the release streams), `archami verify` (check a stream's signature,
trace an AMI id to its release, or re-read a published release in every region), and `archami latest
--stream` (the newest AMI from a stream, no AWS credentials)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from archami.cli.app import app, console, err_console
from archami.errors import ArchamiError

KeyOpt = Annotated[
    list[Path] | None, typer.Option("--key", help="Trusted release public key file (armored or binary); repeat.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DefinitionOpt = Annotated[
    Path | None, typer.Option("--definition", help="Image definition whose publish table says what to expect.")
]


@app.command()
def stream(
    releases_dir: Annotated[Path, typer.Option("--releases", help="Directory of release records.")] = Path("releases"),
    out: Annotated[Path, typer.Option("--out", help="Site directory: streams/ is written below it.")] = Path(
        "out/site"),
    name: Annotated[str | None, typer.Option("--name", help="Image family, when DIR holds several.")] = None,
    gnupg_home: Annotated[Path, typer.Option("--gnupg-home", help="GnuPG home holding the release key.")] = Path(
        "release-gnupg"),
    key: Annotated[str | None, typer.Option("--signing-key", help="Release key (id, fingerprint or user id).")] = None,
    check: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Re-read the newest release in AWS first; refuse unless every check is Correct.",
    )] = True,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="Send every AWS call to this endpoint (a local emulator).")
    ] = None,
    definition: DefinitionOpt = None,
    accept_unverified: Annotated[list[str] | None, typer.Option(
        "--accept-unverified", metavar="CHECK,...|moto",
        help="With --endpoint-url only: checks the endpoint cannot answer, taken as unverified ('moto').")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write streams/<stream>.json and streams/<stream>/releases.json, each with a detached signature."""
    from archami.release.records import published_records
    from archami.release.stream_files import release_key, write_streams

    records = published_records(releases_dir, name)  # a release verification held back is not streamed
    families = sorted({r.definition_name for r in records})
    if len(families) > 1:
        raise ArchamiError(f"{releases_dir} holds releases of {', '.join(families)}: choose one with --name")
    if check and records:
        from archami.cli.verify_published import policy_for, verification_table
        from archami.release.verification import parse_accepted, summarize, verify_release

        accepted = parse_accepted(accept_unverified or [])
        if accepted and endpoint_url is None:
            raise ArchamiError("--accept-unverified is only for an endpoint that is not AWS (--endpoint-url)")
        verification = verify_release(records[0], policy_for(definition, current=True), endpoint_url)
        summary = summarize(verification, accepted, endpoint_url or "AWS")
        if not summary.publishable:
            err_console.print(verification_table(verification))
            raise ArchamiError(f"release {records[0].release_id}: {len(summary.problems)} check(s) not Correct in "
                               f"AWS ({summary.problems[0]}); the streams were not updated")
    gpg, fingerprint = release_key(gnupg_home, key)
    with gpg:
        written = write_streams(records, out, gpg, fingerprint)
    if as_json:
        print(json.dumps({"streams": [str(p) for p in written.streams], "indexes": [str(p) for p in written.indexes],
                          "public_key": str(written.public_key), "fingerprint": fingerprint}, indent=2))
        return
    for path in written.streams:
        console.print(f"stream: {path} (+ .sig)")
    console.print(f"signed with {fingerprint}; public key: {written.public_key}")


def _stream_table(verified_location: str, document: dict[str, object]) -> Table:
    table = Table(title=f"stream {document.get('stream')} ({verified_location})")
    for column in ("architecture", "release", "variant", "image sha256", "regions"):
        table.add_column(column, overflow="fold")
    architectures = document.get("architectures", {})
    assert isinstance(architectures, dict)
    for arch, entry in sorted(architectures.items()):
        regions = entry["images"]["aws"]["regions"]
        table.add_row(arch, entry["artifacts"]["aws"]["release"], entry["archami"]["variant"],
                      entry["artifacts"]["aws"]["formats"]["raw"]["disk"]["sha256"],
                      ", ".join(f"{r} {i['image']}" for r, i in sorted(regions.items())))
    return table


@app.command()
def verify(
    location: Annotated[str | None, typer.Argument(help="Stream file or URL (streams/<stream>.json).")] = None,
    key: KeyOpt = None,
    ami: Annotated[str | None, typer.Option("--ami", help="Tell which release, variant and image this AMI is.")] = None,
    published: Annotated[
        Path | None, typer.Option("--published", help="Re-read a published release (its record) in every region.")
    ] = None,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="Send every AWS call to this endpoint (a local emulator).")
    ] = None,
    definition: DefinitionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a stream's signature (and trace --ami to its release), or verify a published release in AWS."""
    if published is not None:
        from archami.cli.verify_published import verify_published_command

        verify_published_command(published, endpoint_url, as_json, definition)
        return
    if location is None:
        raise ArchamiError("name a stream (file or URL) to verify, or --published RECORD")
    if not key:
        raise ArchamiError("--key: the release public key to trust is needed to verify a stream")
    from archami.release.stream import find_ami
    from archami.release.stream_files import load_verified

    verified = load_verified(location, key)
    match = find_ami(verified.document, verified.index, ami) if ami else None
    if as_json:
        print(json.dumps({"location": location, "signature": "good", "signer": verified.signer,
                          "index_verified": verified.index is not None, "stream": verified.document,
                          "ami": None if match is None else match.__dict__}, indent=2))
    else:
        console.print(f"[green]good signature[/] by {verified.signer} on {location}"
                      + (" and its release index" if verified.index is not None else ""))
        console.print(_stream_table(location, verified.document))
        if match is not None:
            console.print(f"{match.ami_id}: release {match.release_id}, variant {match.variant_id} "
                          f"({match.architecture}, {match.region}), image sha256 {match.image_sha256}"
                          + (" (current)" if match.current else ""))
    if ami and match is None:
        err_console.print(f"[red]{ami} is in no release of this stream[/]")
        raise typer.Exit(1)


def latest_from_stream(location: str, region: str, variant: str, keys: list[Path] | None, as_json: bool) -> None:
    """`archami latest --stream`: the stream's current AMI of `variant` in `region` (verified with --key)."""
    from archami.release.stream_files import load_unverified, load_verified

    document = load_verified(location, keys, with_index=False).document if keys else load_unverified(location)
    for arch, entry in document.get("architectures", {}).items():
        if entry.get("archami", {}).get("variant") == variant:
            image = entry["images"]["aws"]["regions"].get(region)
            if image is None:
                break
            if as_json:
                print(json.dumps({"region": region, "variant": variant, "ami_id": image["image"], "source": "stream",
                                  "release_id": image["release"], "architecture": arch, "verified": bool(keys)}))
            else:
                print(image["image"])
            return
    raise ArchamiError(f"{location}: no AMI of variant {variant!r} in {region}")
