"""`archami kernel build|apt-repo|fragment`: linux-ec2, the EC2 kernel, for Arch and Debian images."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from archami.cli.app import app, console
from archami.cli.args import existing_dir, existing_file
from archami.cli.output import progress_console
from archami.kernel.aptrepo import KEY_FILE, write_apt_repository
from archami.kernel.build import DEFAULT_CACHE, KernelRequest, build_kernel
from archami.kernel.configure import DEFCONFIG, BaseConfig
from archami.kernel.fragment import default_fragment_path, parse_groups
from archami.pacman.gpg import Gpg
from archami.pacman.project import DEFAULT_GNUPGHOME, existing_signing_key, source_date_epoch

kernel_app = typer.Typer(help="Build the EC2 kernel (linux-ec2) as Arch and Debian packages.", no_args_is_help=True)
app.add_typer(kernel_app, name="kernel")

LOG_NAME = "kernel-build.log"


def _file_logger(out: Path) -> tuple[logging.Logger, logging.Handler]:
    out.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("archami.kernel")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(out / LOG_NAME, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    return log, handler


@kernel_app.command("build")
def build(
    source: Annotated[
        Path, typer.Option("--source", help="Linux source tarball (e.g. /usr/src/linux-source-6.1.tar.xz).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for the packages, the .config and the build log.")],
    base_config: Annotated[
        str, typer.Option("--base-config", help="Base configuration file (plain, .xz, .gz) or 'defconfig'.")
    ] = DEFCONFIG,
    fragment: Annotated[
        Path | None, typer.Option("--fragment", help="Configuration fragment (default: archami's EC2 fragment).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Package base name.")] = "linux-ec2",
    pkgrel: Annotated[int, typer.Option("--pkgrel", help="Package release (raise to republish the same version).")] = 1,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel compile jobs (default: CPUs).")] = None,
    cache: Annotated[Path, typer.Option("--cache", help="Build cache.")] = DEFAULT_CACHE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the build record as JSON.")] = False,
) -> None:
    """Configure (base + fragment, checked), compile with `make bindeb-pkg`, and package the kernel."""
    request = KernelRequest(
        source=source, base=BaseConfig.load(base_config), fragment=fragment or default_fragment_path(),
        pkgbase=name, pkgrel=pkgrel, **({"jobs": jobs} if jobs else {}),
    )  # fmt: skip
    log, handler = _file_logger(out)
    try:
        with progress_console(as_json).status(f"[bold]{name}[/]: building (log: {out / LOG_NAME})", spinner="dots"):
            record = build_kernel(request, out, log, cache)
    finally:
        log.removeHandler(handler)
        handler.close()
    if as_json:
        print(json.dumps(asdict(record), indent=2))
        return
    how = "from the cache" if record.cached else f"compiled in {record.compile_seconds:.0f}s"
    table = Table(title=f"{name} {record.release} ({how}; {record.total_seconds:.0f}s in all) in {out}")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for file_name, size in sorted(record.files.items()):
        table.add_row(file_name, str(size))
    table.add_row(record.config_file, str((out / record.config_file).stat().st_size))
    console.print(table)


@kernel_app.command("apt-repo")
def apt_repo(
    directory: Annotated[
        Path, typer.Argument(help="Directory of .deb files (e.g. a `kernel build` DIR).", callback=existing_dir)
    ],
    key: Annotated[str | None, typer.Option("--key", help="Signing key: id, fingerprint or user id.")] = None,
    gnupghome: Annotated[
        Path, typer.Option("--gnupghome", envvar="ARCHAMI_GNUPGHOME", help="GnuPG home holding the signing key.")
    ] = DEFAULT_GNUPGHOME,
    url: Annotated[str, typer.Option("--url", help="Where the directory will be served (for the printed line).")] = (
        "http://127.0.0.1:8080/"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the packages, key and sources line as JSON.")] = False,
) -> None:
    """Index and sign the .debs in DIRECTORY as a flat apt repository; prints the `[[repositories]]` table a
    Debian definition names it with (and its sources.list line)."""
    with Gpg(gnupghome) as gpg:
        repo = write_apt_repository(directory, gpg, existing_signing_key(gpg, key), epoch=source_date_epoch())
    server = url.rstrip("/") + "/"
    key_file = str((directory / KEY_FILE).resolve())
    # json.dumps quotes as TOML basic strings do for these values (paths and URLs already checked).
    table = f"[[repositories]]\nname = \"linux-ec2\"\nserver = {json.dumps(server)}\nkey = {json.dumps(key_file)}\n"
    if as_json:
        print(json.dumps({"directory": str(directory), "packages": list(repo.packages), "key": repo.key,
                          "key_file": key_file, "server": server, "definition": table,
                          "source_line": repo.source_line(url)}, indent=2))
        return
    console.print(f"signed {len(repo.packages)} packages ({', '.join(repo.packages)}) with {repo.key}")
    console.print("add to a Debian definition (with `mirrors` for the archive itself):", highlight=False)
    print(table, end="")


@kernel_app.command("fragment")
def fragment(
    file: Annotated[
        Path | None, typer.Argument(help="Fragment (default: archami's EC2 fragment).", callback=existing_file)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the groups as JSON.")] = False,
) -> None:
    """Show a fragment's groups: why each exists and what it sets."""
    path = file or default_fragment_path()
    groups = parse_groups(path.read_text(), str(path))
    if as_json:
        print(json.dumps([asdict(g) for g in groups], indent=2))
        return
    table = Table(title=str(path))
    for column in ("group", "options", "reason"):
        table.add_column(column, overflow="fold")
    for group in groups:
        table.add_row(group.name, str(len(group.options)), group.reason)
    console.print(table)
