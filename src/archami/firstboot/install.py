"""Install the first-boot agent into an image root: code, settings, systemd units (enabled by symlink).

The build calls `install_into` as one of its steps. Nothing here runs systemctl: enabling a unit is the
symlink `systemctl enable` would make, so it works on any root without booting it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from importlib import resources
from pathlib import Path

from archami.config.spec import ImageSpec
from archami.distro.base import DistroBackend
from archami.firstboot.agent.settings import DEFAULTS, SETTINGS_PATH, Settings
from archami.runner import run_in_root

log = logging.getLogger(__name__)

AGENT_DIR = "/usr/lib/archami"
AGENT_PACKAGE = "archami_agent"  # the agent package's name inside the image
LAUNCHER = f"{AGENT_DIR}/firstboot.py"
# How the units start the agent: isolated (-I) and without site (-S: no site-packages, ~5 ms less per boot).
PYTHON_FLAGS = ("-I", "-S")
UNIT_DIR = "/usr/lib/systemd/system"
WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
EARLY_UNIT = "archami-firstboot.service"
KEYRING_UNIT = "archami-firstboot-keyring.service"
LATE_UNIT = "archami-firstboot-late.service"
ALL_UNITS = (EARLY_UNIT, KEYRING_UNIT, LATE_UNIT)
# With cloud-init as the agent, the definition's first-boot user is cloud-init's (its distro default is
# `debian`/`arch`, with root's keys refused): a drop-in read after the distro's cloud.cfg.
CLOUD_INIT_DROP_IN = "/etc/cloud/cloud.cfg.d/90-archami.cfg"
# Fast host keys first so sshd can start; RSA last (15-30 s under emulation, generated after sshd is up).
HOST_KEY_ORDER = ("ed25519", "ecdsa", "rsa")


def agent_settings(spec: ImageSpec, backend: DistroBackend) -> Settings:
    """The agent's settings for one image, derived from its spec (the distro's part from its backend)."""
    firstboot = spec.firstboot
    values: dict[str, object] = {
        "distro": spec.distro,
        "mode": firstboot.agent,
        "default_user": firstboot.default_user,
        "grow_root": firstboot.grow_root,
        "region_mirrors": firstboot.region_mirrors,
        "user_data_scripts": firstboot.user_data_scripts,
        "host_key_types": sorted(spec.ssh.host_key_types, key=HOST_KEY_ORDER.index),
        **backend.agent_settings(spec),
    }
    assert set(values) <= set(DEFAULTS)
    return Settings(values)


def agent_units(spec: ImageSpec, backend: DistroBackend) -> list[str]:
    """Units to enable: with cloud-init the agent only does mirrors and the keyring (no late phase)."""
    units = [EARLY_UNIT]
    if backend.rules.keyring_on_first_boot:
        units.append(KEYRING_UNIT)
    if spec.firstboot.agent == "archami":
        units.append(LATE_UNIT)
    return units


def cloud_init_config(spec: ImageSpec) -> bytes:
    """cloud.cfg.d drop-in giving the metadata's SSH key to the definition's default user. JSON is YAML, and
    json.dumps quotes the (already validated) user name, so nothing in it can become another setting."""
    user = spec.firstboot.default_user
    if user == "root":
        # No default user; root's authorized_keys gets the keys as they are (disable_root would prefix them
        # with a command that refuses the login).
        settings: dict[str, object] = {"disable_root": False, "users": []}
    else:
        settings = {"system_info": {"default_user": {"name": user}}}
    header = "# archami: firstboot.default_user of the image definition\n"
    return (header + json.dumps(settings, sort_keys=True) + "\n").encode()


def agent_files() -> list[tuple[str, bytes]]:
    """(absolute path in the image, content) of the agent, its launcher and its units: what install_into
    copies and what the archami-firstboot pacman package ships."""
    package = resources.files("archami.firstboot")
    files = [
        (f"{AGENT_DIR}/{AGENT_PACKAGE}/{source.name}", source.read_bytes())
        for source in sorted(package.joinpath("agent").iterdir(), key=lambda p: p.name)
        if source.name.endswith(".py")
    ]
    files.append((LAUNCHER, package.joinpath("launcher.py").read_bytes()))
    files += [(f"{UNIT_DIR}/{name}", package.joinpath("units", name).read_bytes()) for name in ALL_UNITS]
    return files


def install_into(root: Path, spec: ImageSpec, backend: DistroBackend, log: logging.Logger = log) -> None:
    """Copy the agent into `root`, write its settings, install and enable its systemd units."""
    target = root / AGENT_DIR.lstrip("/")
    agent_target = target / AGENT_PACKAGE
    files = agent_files()
    # Files of another agent version go; identical ones stay as they are (see _write).
    wanted = {root / path.lstrip("/") for path, _ in files}
    if agent_target.is_dir():
        for stale in agent_target.glob("*.py"):
            if stale not in wanted:
                stale.unlink()
        shutil.rmtree(agent_target / "__pycache__", ignore_errors=True)
    agent_target.mkdir(parents=True, mode=0o755, exist_ok=True)
    for path, data in files:
        _write(root / path.lstrip("/"), data, 0o644)

    settings = agent_settings(spec, backend)
    _write(root / SETTINGS_PATH.lstrip("/"), settings.to_json().encode(), 0o644)
    if spec.firstboot.agent == "cloud-init":
        _write(root / CLOUD_INIT_DROP_IN.lstrip("/"), cloud_init_config(spec), 0o644)

    wants = root / WANTS_DIR.lstrip("/")
    wants.mkdir(parents=True, exist_ok=True)
    units = agent_units(spec, backend)
    for name in units:
        link = wants / name
        link.unlink(missing_ok=True)
        link.symlink_to(f"{UNIT_DIR}/{name}")
    for name in backend.units_replaced_by_agent(spec):
        mask = root / "etc/systemd/system" / name
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")  # what `systemctl mask` makes
    _precompile(root, target, log)
    log.info("first-boot agent installed: %s", ", ".join(units))


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write unless the file already holds exactly this (installed by the archami-firstboot package: its
    owner's `pacman -Qkk` would flag a rewritten file's modification time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.is_file() and not path.is_symlink() and path.read_bytes() == data):
        path.write_bytes(data)
    path.chmod(mode)


def _precompile(root: Path, target: Path, log: logging.Logger) -> None:
    """Byte-compile the agent with the image's own python3, so the first boot does not pay for it.

    Needs chroot (root privileges); without them the image's python compiles on first use instead.
    """
    python = root / "usr/bin/python3"
    if os.geteuid() != 0 or not python.exists():
        log.info("agent not byte-compiled (no python3 in the image or not root)")
        return
    inside = "/" + str(target.relative_to(root))
    # checked-hash: the .pyc records the source's hash, not its mtime, so two builds write the same bytes
    # (and a changed source is still noticed on import).
    run_in_root(root, ["/usr/bin/python3", "-I", "-m", "compileall", "-q", "--invalidation-mode", "checked-hash",
                       inside], log, what="byte-compiling the first-boot agent")
