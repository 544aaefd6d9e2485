"""`archami repo build|add|remove|verify|list`: the signed `ec2` pacman repository."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from archami.artifacts import CheckResult
from archami.cli.app import app, console
from archami.cli.args import existing_dir
from archami.distro.arch_conf import MIRROR_ENV
from archami.errors import ArchamiError
from archami.pacman.gpg import Gpg, Verifier
from archami.pacman.project import DEFAULT_GNUPGHOME, build_repository, existing_signing_key
from archami.pacman.repo import Change, Repository, Signer, add_packages, remove_packages, verify_repository

repo_app = typer.Typer(help="Build, change and verify the signed `ec2` pacman repository.", no_args_is_help=True)
app.add_typer(repo_app, name="repo")

PROJECT_KEY_FILE = Path("packages/ec2-keyring/ec2.gpg")
# Where examples/arch.toml's `ec2` repository points (file:///var/lib/archami/repo/$repo/$arch).
REPO_ROOT = Path("/var/lib/archami/repo")

RepoDirArg = Annotated[
    Path, typer.Argument(help="Repository directory (what pacman's Server points at).", callback=existing_dir)
]
KeyOpt = Annotated[str | None, typer.Option("--key", help="Signing key: id, fingerprint or user id.")]
GnupgOpt = Annotated[
    Path,
    typer.Option("--gnupghome", envvar="ARCHAMI_GNUPGHOME", help="GnuPG home holding the signing key."),
]
PassphraseOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file", envvar="ARCHAMI_GPG_PASSPHRASE_FILE", help="File holding the signing key's passphrase."
    ),
]
NameOpt = Annotated[str | None, typer.Option("--name", help="Repository name (default: the database's, or ec2).")]
KeyringOpt = Annotated[
    list[Path] | None,
    typer.Option("--keyring", help=f"Trusted public key file (repeatable; default {PROJECT_KEY_FILE})."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _print_changes(changes: list[Change], title: str) -> None:
    table = Table(title=title)
    for column in ("package", "action", "version", "previous", "detail"):
        table.add_column(column)
    for change in changes:
        table.add_row(change.name, change.action, change.version, change.previous or "", change.detail)
    console.print(table)


def _key_files(keyrings: list[Path] | None) -> list[Path]:
    files = list(keyrings or [])
    if not files and PROJECT_KEY_FILE.exists():
        files = [PROJECT_KEY_FILE]
    if not files:
        raise ArchamiError(f"no trusted keys: pass --keyring FILE (or run where {PROJECT_KEY_FILE} exists)")
    return files


@contextmanager
def _exported_key(gpg: Gpg, fingerprint: str) -> Iterator[Path]:
    """The signing key's public part in a temporary file, to check incoming signatures against it."""
    path = gpg.home / f".archami-export-{fingerprint}.asc"
    path.write_text(gpg.export_armored([fingerprint]))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@repo_app.command("build")
def build(
    out: Annotated[
        Path | None, typer.Option("--out", help=f"Repository directory (default: {REPO_ROOT}/NAME/ARCH).")
    ] = None,
    arch: Annotated[str, typer.Option("--arch", help="Architecture directory the repository serves.")] = "x86_64",
    packages: Annotated[Path, typer.Option("--packages", help="Package definitions.")] = Path("packages"),
    key: KeyOpt = None,
    gnupghome: GnupgOpt = DEFAULT_GNUPGHOME,
    passphrase_file: PassphraseOpt = None,
    name: Annotated[str, typer.Option("--name", help="Repository name.")] = "ec2",
    mirror: Annotated[
        list[str] | None,
        typer.Option("--mirror", help=f"Mirror URL for the global mirror list (repeatable; default ${MIRROR_ENV})."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the project's packages (packages/*/package.toml) into a signed repository.

    The first run makes a signing key (unless --key) and writes its public part to
    packages/ec2-keyring/ec2.gpg, the key images and `repo verify` trust.
    """
    mirrors = mirror or [u for u in re.split(r"[\s,]+", os.environ.get(MIRROR_ENV, "")) if u]
    out = out or REPO_ROOT / name / arch
    report = build_repository(
        packages, out, gnupghome=gnupghome, key=key, name=name, mirrors=mirrors, passphrase_file=passphrase_file
    )
    if as_json:
        print(json.dumps(_jsonable(asdict(report)), indent=2))
        return
    if report.key_created:
        console.print(f"[yellow]new signing key[/] {report.key} in {gnupghome}")
    if report.key_file_written:
        console.print(f"[yellow]public key written to {report.key_file_written}: commit it[/]")
    _print_changes(report.changes, f"repository {report.name} in {report.directory} (signed by {report.key})")
    table = Table(title="files")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for filename, size in report.files:
        table.add_row(filename, str(size))
    console.print(table)


@repo_app.command("add")
def add(
    directory: RepoDirArg,
    packages: Annotated[list[Path], typer.Argument(help="Package files (their .sig beside them is kept).")],
    key: KeyOpt = None,
    gnupghome: GnupgOpt = DEFAULT_GNUPGHOME,
    passphrase_file: PassphraseOpt = None,
    name: NameOpt = None,
    keyring: KeyringOpt = None,
    resign: Annotated[bool, typer.Option("--resign", help="Replace existing signatures with ours.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add packages (built here or elsewhere); keeps only the newest version of each; re-signs the database."""
    repo = Repository.open(directory, name)
    with ExitStack() as stack:
        gpg = stack.enter_context(Gpg(gnupghome, passphrase_file))
        signer = Signer(gpg, existing_signing_key(gpg, key))
        verifier = None
        arrives_signed = any(p.with_name(p.name + ".sig").exists() for p in packages)
        if arrives_signed and not resign:
            if keyring:
                verifier = stack.enter_context(Verifier(keyring))
            else:
                own = stack.enter_context(_exported_key(gpg, signer.key))
                verifier = stack.enter_context(Verifier([own]))
        changes = add_packages(repo, packages, signer=signer, verifier=verifier, resign=resign)
    if as_json:
        print(json.dumps([asdict(c) for c in changes], indent=2))
    else:
        _print_changes(changes, f"repository {repo.name} in {directory}")


@repo_app.command("remove")
def remove(
    directory: RepoDirArg,
    names: Annotated[list[str], typer.Argument(help="Package names to remove.")],
    key: KeyOpt = None,
    gnupghome: GnupgOpt = DEFAULT_GNUPGHOME,
    passphrase_file: PassphraseOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove packages (and their files) and re-sign the database."""
    repo = Repository.open(directory, name)
    if not repo.exists():
        raise ArchamiError(f"{directory}: no {repo.name} database")
    with Gpg(gnupghome, passphrase_file) as gpg:
        changes = remove_packages(repo, names, signer=Signer(gpg, existing_signing_key(gpg, key)))
    if as_json:
        print(json.dumps([asdict(c) for c in changes], indent=2))
    else:
        _print_changes(changes, f"repository {repo.name} in {directory}")


@repo_app.command("verify")
def verify(directory: RepoDirArg, keyring: KeyringOpt = None, name: NameOpt = None, as_json: JsonOpt = False) -> None:
    """Check every checksum and signature; exit 1 if anything is wrong."""
    repo = Repository.open(directory, name)
    with Verifier(_key_files(keyring)) as verifier:
        checks = verify_repository(repo, verifier)
    _print_checks(checks, as_json, f"verify {repo.name} in {directory}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def _print_checks(checks: list[CheckResult], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps([c.model_dump() for c in checks], indent=2))
        return
    table = Table(title=title)
    for column in ("check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for c in checks:
        table.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]FAIL[/]", c.detail)
    console.print(table)


@repo_app.command("list")
def list_packages(directory: RepoDirArg, name: NameOpt = None, as_json: JsonOpt = False) -> None:
    """List the packages in a repository's database."""
    repo = Repository.open(directory, name)
    entries = sorted(repo.entries().values(), key=lambda e: e.name)
    if as_json:
        rows = [{"name": e.name, "version": e.version, "filename": e.filename, "csize": e.csize} for e in entries]
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{repo.name} in {directory}")
    for column in ("package", "version", "arch", "bytes", "description"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.name, e.version, e.arch, str(e.csize), e.desc)
    console.print(table)
