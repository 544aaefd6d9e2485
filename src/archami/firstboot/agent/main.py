"""Entry point: `python3 /usr/lib/archami/firstboot.py [--phase early|keyring|late|all] [--root DIR] ...`.

Exit status 0 when every step succeeded or was skipped, 1 when one failed (the unit then shows failed and
the boot test notices), 2 for bad arguments or settings. A status file per phase records each step.
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import phases
from .context import Context
from .ec2detect import on_ec2
from .files import log, write_atomic
from .imds import ImdsClient
from .settings import SETTINGS_PATH, STATE_DIR, load_settings
from .steps import Steps

USAGE = """usage: firstboot.py [--phase early|keyring|late|all] [--root DIR] [--settings FILE]
                    [--imds-url URL]... [--deadline SECONDS] [--request-timeout SECONDS]"""
PHASES = ("early", "keyring", "late", "all")


def parse_args(argv: list[str]) -> dict[str, object]:
    """A dozen lines instead of argparse, whose import alone costs ~10 ms of the agent's 100 ms budget."""
    args: dict[str, object] = {"phase": "all", "root": "/", "settings": None, "imds_url": [],
                               "deadline": None, "request_timeout": None}
    items = list(argv)
    while items:
        flag = items.pop(0)
        if flag in ("-h", "--help"):
            raise SystemExit(USAGE)
        name, sep, value = flag.partition("=")
        key = name[2:].replace("-", "_")
        if not name.startswith("--") or key not in args:
            raise ValueError(f"unknown option {flag}")
        if not sep:
            if not items:
                raise ValueError(f"{name} needs a value")
            value = items.pop(0)
        if key == "imds_url":
            urls = args["imds_url"]
            assert isinstance(urls, list)
            urls.append(value)
        elif key in ("deadline", "request_timeout"):
            args[key] = float(value)
        else:
            args[key] = value
    if args["phase"] not in PHASES:
        raise ValueError(f"--phase must be one of {', '.join(PHASES)}")
    return args


def startup_seconds() -> float | None:
    """Wall time from exec to now (interpreter start-up and imports), from /proc/self/stat's start time."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5), counted after "(comm)"
        return round(time.clock_gettime(time.CLOCK_BOOTTIME) - started, 3)
    except (OSError, ValueError, IndexError):
        return None


def main(argv: list[str] | None = None) -> int:
    startup = {"cpu": round(time.process_time(), 4), "wall": startup_seconds()}
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        root = str(args["root"])
        settings_path = args["settings"] or root.rstrip("/") + SETTINGS_PATH
        settings = load_settings(str(settings_path))
        if args["deadline"] is not None:
            settings.deadline = float(str(args["deadline"]))
        if args["request_timeout"] is not None:
            settings.request_timeout = float(str(args["request_timeout"]))
        if args["imds_url"]:
            settings.imds_urls = list(args["imds_url"])  # type: ignore[call-overload]
    except (ValueError, OSError) as exc:
        log(f"error: {exc}")
        return 2
    ctx = Context(root, settings)
    if ctx.live and args["deadline"] is None and not on_ec2():
        log(f"this machine does not look like EC2: waiting at most {settings.deadline_off_ec2:.0f} s for metadata")
        settings.deadline = min(settings.deadline, settings.deadline_off_ec2)
    phase = str(args["phase"])
    steps = Steps()

    try:
        if phase in ("early", "all"):
            client = ImdsClient(settings.imds_urls, deadline=settings.deadline,
                                request_timeout=settings.request_timeout, token_ttl=settings.token_ttl,
                                v1_fallback=settings.imds_v1_fallback)
            phases.early(ctx, client, steps, slow_keys_later=phase == "early")
        if phase in ("keyring", "all"):
            phases.keyring(ctx, steps)
        if phase in ("late", "all"):
            phases.late(ctx, steps)
    except Exception as exc:  # outside any step (say, the state file cannot be written): still report it
        steps.fail("agent", f"{type(exc).__name__}: {exc}")
    seconds = time.monotonic() - steps.started
    # The agent's own CPU since exec (interpreter start-up and imports included; ssh-keygen, gpg not).
    status = {"phase": phase, "ok": steps.ok, "instance_id": ctx.state.instance_id, "seconds": round(seconds, 3),
              "cpu_self": round(time.process_time(), 4), "startup": startup, "steps": steps.results,
              "step_seconds": steps.seconds}
    write_atomic(ctx.path(f"{STATE_DIR}/status-{phase}.json"), (json.dumps(status, indent=2) + "\n").encode())
    log(f"phase {phase} {'done' if steps.ok else 'FAILED'} in {seconds:.2f} s")
    return 0 if steps.ok else 1
