"""The agent's settings: /etc/archami/firstboot.json in the image, written by install.py from the definition.

A plain class rather than a dataclass: `dataclasses` pulls in `inspect`, which costs the agent several
milliseconds of CPU on every boot.
"""

from __future__ import annotations

import json

SETTINGS_PATH = "/etc/archami/firstboot.json"
STATE_DIR = "/var/lib/archami/firstboot"
USER_DATA_LOG = "/var/log/archami/user-data.log"
LATE_FLAG = "/run/archami/firstboot-late"  # the early phase leaves work for the late unit (its condition)
IMDS_URLS = ["http://169.254.169.254", "http://[fd00:ec2::254]"]

DEFAULTS: dict[str, object] = {
    "distro": "arch",
    "mode": "archami",  # or "cloud-init": then only mirrors and the pacman keyring
    "default_user": "root",
    "grow_root": True,
    "region_mirrors": True,
    "user_data_scripts": True,
    "host_key_types": ["ed25519", "ecdsa", "rsa"],
    "pacman_keyrings": ["archlinux", "ec2"],
    "apt_region_mirror": None,  # e.g. "http://$region.mirror.example/debian" (Debian, when configured)
    "imds_urls": IMDS_URLS,
    "imds_v1_fallback": False,  # archami registers AMIs with ImdsSupport=v2.0: never fall back by default
    "token_ttl": 21600,
    "request_timeout": 2.0,
    "deadline": 120.0,  # seconds for a whole phase's metadata before the agent gives up
    "deadline_off_ec2": 10.0,  # the same when the machine does not look like EC2 (nothing may ever answer)
    "user_data_max_bytes": 16384,  # EC2's own limit on user-data
    "user_data_timeout": 900.0,
}


class Settings:
    distro: str
    mode: str
    default_user: str
    grow_root: bool
    region_mirrors: bool
    user_data_scripts: bool
    host_key_types: list[str]
    pacman_keyrings: list[str]
    apt_region_mirror: str | None
    imds_urls: list[str]
    imds_v1_fallback: bool
    token_ttl: int
    request_timeout: float
    deadline: float
    deadline_off_ec2: float
    user_data_max_bytes: int
    user_data_timeout: float

    def __init__(self, values: dict[str, object]) -> None:
        unknown = sorted(set(values) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        for name, default in DEFAULTS.items():
            value = values.get(name, default)
            if default is not None and not isinstance(value, type(default)) and not (
                isinstance(default, float) and isinstance(value, int)
            ):
                raise ValueError(f"setting {name!r} must be {type(default).__name__}, not {value!r}")
            setattr(self, name, value)

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in DEFAULTS}, indent=2) + "\n"


def load_settings(path: str) -> Settings:
    """Read the settings file; a missing file means all defaults (an image built without install.py)."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
    except FileNotFoundError:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: not a JSON object")
    return Settings(values)
