"""The host checks `archami doctor` runs besides the tool table: root, KVM, free disk for the cache, the Arch
mirror setting, AWS credentials. Each check belongs to the commands that need it, and says what to do.

Nothing here talks to the network: credentials are looked for where the AWS SDK would read them
(environment, shared files), never tried. The KVM probe starts QEMU for a few seconds (archami.vm.qemu).
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from archami.hosttools import BOOTS, BUILDS

Status = Literal["ok", "warning", "failed"]

CACHE_DIR = Path("/var/cache/archami")  # image/cache.py's default, without importing the build stage
GIB = 2**30
# Free space below which a build is likely to run out: a root cache, two images and packages per variant;
# the kernel's object tree and packages.
CACHE_NEEDS_GIB = {"build": 8, "release": 8, "demo": 8, "kernel": 12}
ARCH_MIRROR_ENV = "ARCHAMI_ARCH_MIRROR"  # distro/arch_conf.py's MIRROR_ENV
AWS_COMMANDS = ("publish", "release", "prune", "latest", "verify", "stream", "fleet")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str


def check_root(euid: int | None = None) -> CheckResult:
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return CheckResult("root", "ok", "running as root")
    return CheckResult("root", "failed",
                       "image builds run the distributions' own bootstrap tools as root: run archami with sudo")


def check_kvm(env: Mapping[str, str] | None = None) -> CheckResult:
    environment = os.environ if env is None else env
    forced = environment.get("ARCHAMI_ACCEL", "").strip().lower()
    if forced in ("kvm", "tcg"):
        return CheckResult("kvm", "ok" if forced == "kvm" else "warning",
                           f"ARCHAMI_ACCEL={forced}: guests run with {forced.upper()} (not probed)")
    if not Path("/dev/kvm").exists():
        return CheckResult("kvm", "warning", "/dev/kvm absent: guests run under TCG, several times slower")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return CheckResult("kvm", "warning", "/dev/kvm not readable and writable here (add the user to group kvm): "
                                             "guests run under TCG")
    from archami.vm.qemu import kvm_works  # starts QEMU for a few seconds: only when this check runs

    if kvm_works():
        return CheckResult("kvm", "ok", "/dev/kvm usable: guests run with KVM")
    return CheckResult("kvm", "warning", "/dev/kvm exists but a KVM guest does not start (nested virtualization?): "
                                         "guests run under TCG")


def check_cache_disk(command: str, cache: Path = CACHE_DIR) -> CheckResult:
    needs = CACHE_NEEDS_GIB.get(command, max(CACHE_NEEDS_GIB.values()))
    existing = cache
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    detail = f"{free / GIB:.1f} GiB free for {cache} ({command} wants about {needs} GiB)"
    return CheckResult("cache disk", "ok" if free >= needs * GIB else "warning", detail)


def check_arch_mirror(env: Mapping[str, str] | None = None) -> CheckResult:
    environment = os.environ if env is None else env
    raw = environment.get(ARCH_MIRROR_ENV, "").strip()
    if not raw:
        return CheckResult("arch mirror", "warning", f"{ARCH_MIRROR_ENV} not set: Arch Linux definitions need "
                                                     "`mirrors` (Debian definitions do not)")
    urls = [url for url in re.split(r"[\s,]+", raw) if url]
    bad = [u for u in urls if not re.match(r"(https?|file)://", u) or "$repo" not in u or "$arch" not in u]
    if bad:
        return CheckResult("arch mirror", "warning", f"{ARCH_MIRROR_ENV}: {', '.join(bad)} is not a mirror "
                                                     "template (http(s):// or file://, with $repo and $arch)")
    return CheckResult("arch mirror", "ok", f"{ARCH_MIRROR_ENV}={' '.join(urls)}")


def _profiles(path: Path, config: bool) -> dict[str, set[str]]:
    """Profile name -> its keys, from a shared credentials or config file (unreadable: none)."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return {}
    out: dict[str, set[str]] = {}
    for section in parser.sections():
        name = section.removeprefix("profile ").strip() if config else section.strip()
        out[name] = set(parser[section])
    return out


_CREDENTIAL_KEYS = {"aws_access_key_id", "credential_process", "sso_session", "sso_start_url", "role_arn",
                    "web_identity_token_file"}


def check_aws_credentials(env: Mapping[str, str] | None = None, home: Path | None = None) -> CheckResult:
    """Where the SDK would find credentials, by name only (no secret is printed, nothing is called)."""
    environment = os.environ if env is None else env
    base = (home or Path.home()) / ".aws"
    if environment.get("AWS_ACCESS_KEY_ID") and environment.get("AWS_SECRET_ACCESS_KEY"):
        return CheckResult("aws credentials", "ok", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set")
    if environment.get("AWS_WEB_IDENTITY_TOKEN_FILE") and environment.get("AWS_ROLE_ARN"):
        return CheckResult("aws credentials", "ok", "web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)")
    if any(environment.get(f"AWS_CONTAINER_CREDENTIALS_{kind}_URI") for kind in ("RELATIVE", "FULL")):
        return CheckResult("aws credentials", "ok", "container credentials (AWS_CONTAINER_CREDENTIALS_*)")
    profile = environment.get("AWS_PROFILE") or environment.get("AWS_DEFAULT_PROFILE") or "default"
    credentials = Path(environment.get("AWS_SHARED_CREDENTIALS_FILE") or base / "credentials")
    config = Path(environment.get("AWS_CONFIG_FILE") or base / "config")
    for path, is_config in ((credentials, False), (config, True)):
        keys = _profiles(path, is_config).get(profile, set())
        if keys & _CREDENTIAL_KEYS:
            return CheckResult("aws credentials", "ok", f"profile {profile!r} in {path}")
    return CheckResult("aws credentials", "warning", f"none found for profile {profile!r} (environment, {credentials}, "
                       f"{config}); an EC2 instance profile would not show here. Not checked: doctor never calls AWS")


def checks_for(command: str | None, cache: Path = CACHE_DIR) -> list[Callable[[], CheckResult]]:
    """The checks `archami doctor COMMAND` runs (None: all of them); `cache`: where that command's cache is."""
    every = command is None
    out: list[Callable[[], CheckResult]] = []
    if every or command in BUILDS:
        out.append(check_root)
    if every or command in BOOTS:
        out.append(check_kvm)
    if every or command in CACHE_NEEDS_GIB:
        out.append(lambda: check_cache_disk(command or "build", cache))
    if every or command in (*BUILDS, "repo"):
        out.append(check_arch_mirror)
    if every or command in AWS_COMMANDS:
        out.append(check_aws_credentials)
    return out
