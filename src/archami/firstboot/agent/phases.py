"""The agent's three phases, each run by its own systemd unit (or all at once with --phase all):

early   before sshd: metadata, hostname, authorized_keys, fast host keys, machine-id, mirrors, root size
keyring beside sshd, before pacman can run: a new pacman keyring per instance
late    after sshd, only when early left it work: slow host keys (RSA) then an sshd reload, the user-data
        script early queued
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from . import identity, mirrors, sshkeys, values
from .context import Context
from .files import log, now_iso, remove, write_atomic
from .httpclient import BodyTooLarge
from .imds import ImdsClient, ImdsUnavailable
from .settings import LATE_FLAG, STATE_DIR
from .steps import Steps

SLOW_KEY_TYPES = ("rsa",)
MAX_KEY_BYTES = 16384  # an RSA-16384 key line is ~2.8 KB: anything this large is not a key


class Metadata:
    """What the metadata service said. Only a service that cannot answer raises (ImdsUnavailable); a value
    the agent cannot use safely is None or '' here, is logged, and costs only the steps that need it."""

    __slots__ = ("availability_zone", "instance_id", "keys", "local_hostname", "region")

    def __init__(self, client: ImdsClient) -> None:
        self.instance_id = _usable(client, "instance-id", values.MAX_ID)
        self.availability_zone = _usable(client, "placement/availability-zone", values.MAX_ZONE) or ""
        # Old metadata versions have no placement/region: the zone minus its letter is the region.
        region = _usable(client, "placement/region", values.MAX_ZONE) or self.availability_zone.rstrip(
            "abcdefghijklmnopqrstuvwxyz")
        if region and not values.region(region):
            log(f"unusable region {region[:40]!r}: no region mirror")
            region = ""
        self.region = region
        self.local_hostname = (client.get_text("meta-data/local-hostname") or "").strip()
        self.keys = public_keys(client)


def _usable(client: ImdsClient, name: str, limit: int) -> str | None:
    raw = client.get_text(f"meta-data/{name}")
    value = values.text(raw or "", limit)
    if value is None and raw and raw.strip():
        log(f"unusable {name} {raw.strip()[:40]!r} (not printable text of at most {limit} characters)")
    return value


def public_keys(client: ImdsClient) -> list[str]:
    """Every key's text; an instance launched without a key pair has no public-keys/ at all (404)."""
    listing = client.get_text("meta-data/public-keys/")
    texts = []
    for entry in (listing or "").splitlines():
        index = entry.split("=", 1)[0].strip()
        if not index.isdigit():
            log(f"skipped a malformed public-keys entry {entry[:40]!r}")
            continue
        try:
            body = client.get(f"meta-data/public-keys/{index}/openssh-key", MAX_KEY_BYTES)
        except BodyTooLarge:
            log(f"skipped public key {index}: larger than {MAX_KEY_BYTES} bytes")
            continue
        if body:
            texts.append(body.decode("utf-8", errors="replace"))
    return texts


def early(ctx: Context, client: ImdsClient, steps: Steps, *, slow_keys_later: bool) -> None:
    settings = ctx.settings
    fast_types = [t for t in settings.host_key_types if not (slow_keys_later and t in SLOW_KEY_TYPES)]
    started = time.monotonic()
    try:
        md = Metadata(client)
    except ImdsUnavailable as exc:
        steps.fail("metadata", str(exc))
        steps.seconds["metadata"] = round(time.monotonic() - started, 3)
        # Nothing per-instance can be decided without an instance-id; still let sshd start and the disk grow.
        if settings.mode == "archami":
            steps.run("host-keys", lambda: _generate(ctx, fast_types))
            _flag_late(ctx, None)
        _grow(ctx, steps)
        return
    steps.seconds["metadata"] = round(time.monotonic() - started, 3)
    state = ctx.state
    iid = md.instance_id
    place = md.availability_zone or md.region or "an unknown zone"
    if iid is None:
        # Whether this is a new instance cannot be told: what metadata says is applied (keys, hostname), what
        # belongs to one instance only (its host keys, machine-id, the once-per-instance user-data) is left.
        steps.results["metadata"] = f"no usable instance-id, in {place}"
        log(f"no usable instance-id in {place}: keys and hostname applied, per-instance identity left as it is")
    else:
        previous = state.instance_id
        state.record(instance_id=iid, region=md.region, availability_zone=md.availability_zone,
                     configured_at=now_iso(), **({"previous_instance_id": previous} if previous != iid else {}))
        steps.results["metadata"] = f"{iid} in {place}"
        was = f" (was {previous})" if previous not in (None, iid) else ""
        log(f"instance {iid} in {place}{was}")

    if settings.mode == "archami":
        _per_instance(ctx, steps, "hostname", iid, lambda: _hostname(ctx, md.local_hostname))
        _per_instance(ctx, steps, "authorized-keys", iid,
                      lambda: sshkeys.write_authorized_keys(ctx, sshkeys.clean_keys(md.keys)))
        if iid is None:
            steps.run("host-keys", lambda: _generate(ctx, fast_types))  # only missing ones: sshd must start
            steps.skip("machine-id", "no usable instance-id")
        else:
            _per_instance(ctx, steps, "host-keys", iid, lambda: _host_keys(ctx, iid, fast_types))
            _per_instance(ctx, steps, "machine-id", iid, lambda: _machine_id(ctx, iid))
        if not settings.user_data_scripts:
            steps.skip("user-data", "disabled")
        elif iid is None:
            steps.skip("user-data", "no usable instance-id to run it once for")
        elif not state.is_due("user-data", iid):
            steps.skip("user-data", "already ran for this instance")
        else:
            steps.run("user-data", lambda: _fetch_user_data(ctx, client, iid))
    if settings.region_mirrors and md.region:
        _per_instance(ctx, steps, "mirrors", iid, lambda: _mirrors(ctx, md.region))
    _grow(ctx, steps)
    if settings.mode == "archami":
        _flag_late(ctx, iid)


def keyring(ctx: Context, steps: Steps) -> None:
    from . import keyring as pacman_keyring  # imports shutil/subprocess: only this phase pays for them

    if not _pacman_present(ctx):
        steps.skip("keyring", "no pacman")
        return
    iid = ctx.state.instance_id
    present = pacman_keyring.has_keyring(ctx)
    if present and (iid is None or not ctx.state.is_due("keyring", iid)):
        steps.skip("keyring", "already made for this instance")
        return
    if steps.run("keyring", lambda: pacman_keyring.make_keyring(ctx, ctx.settings.pacman_keyrings)) and iid:
        ctx.state.mark("keyring", iid)


def late(ctx: Context, steps: Steps) -> None:
    """Needs no metadata: the early phase queued the user-data script. Its unit only starts when the early
    phase left it work (the flag file), so a boot with nothing slow to do costs one process less."""
    settings = ctx.settings
    if settings.mode != "archami":
        return
    generated: list[str] = []
    steps.run("slow-host-keys", lambda: _generate(ctx, settings.host_key_types, generated))
    if generated and ctx.live:
        steps.run("sshd-reload", _reload_sshd)
    iid = ctx.state.instance_id
    if not settings.user_data_scripts:
        steps.skip("user-data-script", "disabled")
    elif iid is None or not ctx.state.is_due("user-data", iid):
        steps.skip("user-data-script", "nothing due")
    elif not os.path.exists(_pending_script(ctx, iid)):
        steps.skip("user-data-script", "no script queued")
    else:
        steps.run("user-data-script", lambda: _run_user_data(ctx, iid))
    remove(ctx.path(LATE_FLAG))


# --- steps ------------------------------------------------------------------------------------------------


def _per_instance(ctx: Context, steps: Steps, name: str, iid: str | None, action: Callable[[], str]) -> None:
    """Once per instance; without a usable instance-id, on every boot (and nothing recorded)."""
    if iid is None:
        steps.run(name, action)
        return
    if not ctx.state.is_due(name, iid):
        steps.skip(name, "already done for this instance")
        return
    if steps.run(name, action):
        ctx.state.mark(name, iid)


def _hostname(ctx: Context, local_hostname: str) -> str:
    name = identity.hostname_from_metadata(local_hostname)
    if name is None:
        return f"kept: {local_hostname[:60]!r} is not a usable host name"
    identity.set_hostname(ctx, name)
    return name


def _host_keys(ctx: Context, iid: str, types: list[str]) -> str:
    # Keys recorded for another instance are that instance's identity: drop them all, then make ours.
    recorded = ctx.state.done.get("host-keys")
    removed = sshkeys.remove_host_keys(ctx) if recorded not in (None, iid) else 0
    generated: list[str] = []
    _generate(ctx, types, generated)
    return (f"removed {removed} old file(s), " if removed else "") + f"generated {', '.join(generated) or 'none'}"


def _generate(ctx: Context, types: list[str], generated: list[str] | None = None) -> str:
    made = [t for t in types if sshkeys.generate_host_key(ctx, t)]
    if generated is not None:
        generated.extend(made)
    return f"generated {', '.join(made)}" if made else "all present"


def _machine_id(ctx: Context, iid: str) -> str:
    # The first instance keeps the id systemd made at its first boot; every later one gets its own.
    if ctx.state.done.get("machine-id") is None:
        return "kept (first instance of this disk)"
    identity.replace_machine_id(ctx)
    return "new machine-id"


def _mirrors(ctx: Context, region: str) -> str:
    settings = ctx.settings
    if settings.distro == "arch":
        return mirrors.pacman_mirrorlist(ctx, region)
    if settings.apt_region_mirror:
        return mirrors.apt_region_mirror(ctx, region, settings.apt_region_mirror)
    return "no region mirror configured"


def _grow(ctx: Context, steps: Steps) -> None:
    if ctx.settings.mode != "archami":
        steps.skip("grow-root", "cloud-init grows the root")
    elif not ctx.settings.grow_root:
        steps.skip("grow-root", "disabled")
    elif not ctx.live:
        steps.skip("grow-root", "not a live system (--root)")
    else:
        from . import growroot

        steps.run("grow-root", growroot.grow_root)


def _pending_script(ctx: Context, iid: str) -> str:
    return ctx.path(f"{STATE_DIR}/user-data/{values.file_name(iid)}")


def _fetch_user_data(ctx: Context, client: ImdsClient, iid: str) -> str:
    """Fetch user-data; a '#!' script is queued for the late phase, anything else is done with here."""
    limit = ctx.settings.user_data_max_bytes
    try:
        data = client.get("user-data", limit)
    except BodyTooLarge:
        ctx.state.mark("user-data", iid)
        return f"ignored: larger than {limit} bytes"
    if data is None or not data.startswith(b"#!"):
        ctx.state.mark("user-data", iid)
        return "none" if data is None else "not a script: left for cloud-init"
    write_atomic(_pending_script(ctx, iid), data, 0o700)
    return f"script of {len(data)} bytes queued for the late phase"


def _run_user_data(ctx: Context, iid: str) -> str:
    from . import userdata

    # Marked before running: "once per instance" must hold even if the script reboots the machine.
    ctx.state.mark("user-data", iid)
    script = _pending_script(ctx, iid)
    try:
        return userdata.run_script(ctx, script, iid)
    finally:
        remove(script)  # user-data may hold secrets: it must not ride along into an AMI made from this disk


def _flag_late(ctx: Context, iid: str | None) -> None:
    """Leave the late unit its work: slow host keys still missing, or a queued user-data script."""
    reasons = [t for t in ctx.settings.host_key_types if not os.path.exists(sshkeys.host_key_path(ctx, t))]
    if iid and ctx.state.is_due("user-data", iid) and os.path.exists(_pending_script(ctx, iid)):
        reasons.append("user-data")
    if reasons:
        write_atomic(ctx.path(LATE_FLAG), (" ".join(reasons) + "\n").encode(), 0o644)


def _pacman_present(ctx: Context) -> bool:
    if ctx.settings.distro != "arch" and not os.path.exists(ctx.path("/etc/pacman.conf")):
        return False
    return any(os.access(os.path.join(d, "pacman-key"), os.X_OK) for d in os.environ.get("PATH", "").split(":") if d)


def _reload_sshd() -> str:
    import subprocess

    for unit in ("sshd.service", "ssh.service"):
        result = subprocess.run(["systemctl", "try-reload-or-restart", unit], capture_output=True, check=False)
        if result.returncode == 0:
            return f"{unit} reloaded"
    return "no sshd unit to reload"
