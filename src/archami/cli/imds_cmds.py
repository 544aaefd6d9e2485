"""`archami imds`: run the local IMDSv2 server on its own (for a VM started by hand, or to poke at it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from archami.boundedio import read_bounded, read_text_bounded
from archami.cli.app import app, console, err_console
from archami.cli.args import existing_file, existing_files, seconds_or_zero
from archami.cli.args import port as port_number
from archami.cli.output import print_json
from archami.errors import ArchamiError
from archami.vm.imds import FaultPlan, ImdsConfig, ImdsServer

KEY_LIMIT = 64 * 1024  # an OpenSSH public key line is under 1 KiB (RSA 16384: ~2.8 KiB)
USER_DATA_LIMIT = 16 * 1024  # EC2's own limit on user-data


def _read_keys(files: list[Path]) -> dict[str, str]:
    """Key-pair name -> key line: the name is the file's stem (as an EC2 key pair name would be)."""
    keys: dict[str, str] = {}
    for path in files:
        lines = [line for line in read_text_bounded(path, KEY_LIMIT, "public key").splitlines() if line.strip()]
        if len(lines) != 1:
            raise ArchamiError(f"{path}: expected one OpenSSH public key line, found {len(lines)}")
        name = path.name.removesuffix(".pub")
        keys[name if name not in keys else f"{name}-{len(keys)}"] = lines[0]
    return keys


def parse_faults(specs: list[str]) -> FaultPlan:
    """'--fault token-delay=2 --fault public-keys-404' -> FaultPlan(token_delay=2.0, public_keys_404=True)."""
    defaults = FaultPlan()
    values: dict[str, object] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        field = name.strip().replace("-", "_")
        if field not in FaultPlan.__dataclass_fields__:
            known = ", ".join(f.replace("_", "-") for f in FaultPlan.__dataclass_fields__)
            raise ArchamiError(f"--fault {spec}: unknown fault (known: {known})")
        default = getattr(defaults, field)
        try:
            if isinstance(default, bool):
                values[field] = text.lower() not in ("0", "false", "no") if sep else True
            elif default is None or isinstance(default, int):
                values[field] = int(text)
            else:
                values[field] = float(text)
        except ValueError as exc:
            raise ArchamiError(f"--fault {spec}: needs a number, e.g. {name}=2") from exc
    return FaultPlan(**values)  # type: ignore[arg-type]


@app.command()
def imds(
    port: Annotated[
        int, typer.Option(help="Port on the loopback address (0: any free port).", callback=port_number)
    ] = 0,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only).")] = "127.0.0.1",
    key: Annotated[
        list[Path] | None, typer.Option("--key", help="OpenSSH public key file (repeatable).", callback=existing_files)
    ] = None,
    instance_id: Annotated[str, typer.Option(help="instance-id to report.")] = ImdsConfig.instance_id,
    region: Annotated[str, typer.Option(help="Region to report.")] = ImdsConfig.region,
    availability_zone: Annotated[str | None, typer.Option("--az", help="Zone (default: region + 'a').")] = None,
    hostname: Annotated[str, typer.Option(help="local-hostname to report.")] = ImdsConfig.hostname,
    user_data: Annotated[Path | None, typer.Option(help="File served as user-data.", callback=existing_file)] = None,
    duration: Annotated[
        float, typer.Option(help="Stop after this many seconds (0: until Ctrl-C).", callback=seconds_or_zero)
    ] = 0,
    fault: Annotated[
        list[str] | None, typer.Option("--fault", help="Misbehave: e.g. token-delay=2, public-keys-404 (repeatable).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's address and settings as JSON once listening.")
    ] = False,
) -> None:
    """Serve EC2 instance metadata (IMDSv2: token required) on a loopback port until interrupted."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ArchamiError(f"--host {host}: the local IMDS listens on loopback only (127.0.0.1 or ::1)")
    data = read_bounded(user_data, USER_DATA_LIMIT, "user-data") if user_data is not None else None
    config = ImdsConfig(
        instance_id=instance_id,
        region=region,
        availability_zone=availability_zone or f"{region}a",
        hostname=hostname,
        public_keys=_read_keys(key or []),
        user_data=data,
    )
    try:
        server = ImdsServer(config, host=host, port=port, faults=parse_faults(fault or []))
    except OSError as exc:
        raise ArchamiError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    with server:  # listening before the URL is printed: a client may connect at once
        if as_json:  # first, then the request log on stderr: a script reads the port and goes on
            print_json({"url": server.url, "host": host, "port": server.port, "instance_id": config.instance_id,
                        "region": config.region, "availability_zone": config.availability_zone,
                        "hostname": config.hostname, "public_keys": list(config.public_keys),
                        "user_data_bytes": len(data) if data is not None else None, "faults": fault or []})
            _serve(server, duration, err_console)
            return
        table = Table(title="local IMDSv2", show_header=False)
        for name, value in (
            ("url", server.url), ("instance-id", config.instance_id), ("region", config.region),
            ("zone", config.availability_zone), ("hostname", config.hostname),
            ("public keys", ", ".join(config.public_keys) or "(none)"),
            ("user-data", f"{len(data)} bytes" if data is not None else "(none)"),
            ("faults", ", ".join(fault or []) or "(none)"),
        ):
            table.add_row(name, value)
        console.print(table)
        console.print(f"try: TOKEN=$(curl -sX PUT {server.url}/latest/api/token "
                      "-H 'X-aws-ec2-metadata-token-ttl-seconds: 60')", highlight=False, soft_wrap=True)
        _serve(server, duration, console)


def _serve(server: ImdsServer, duration: float, log: Console) -> None:
    """Log each request until `duration` seconds have passed (0: until Ctrl-C)."""
    seen = 0
    deadline = time.monotonic() + duration if duration > 0 else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            for record in server.requests[seen:]:
                log.print(f"{record.method} {record.path} -> {record.status}", highlight=False)
            seen = len(server.requests)
    except KeyboardInterrupt:
        log.print("stopped")
