"""Helpers for the agent's integration tests: an image root with the agent installed, and running it.

The agent runs as it does in the image: the system's /usr/bin/python3 (not the virtualenv, so a stray
non-stdlib import would fail), with the units' flags (-I -S), through the installed launcher, against the local IMDS.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from archami.config import load_definition
from archami.distro import backend_for
from archami.firstboot.install import PYTHON_FLAGS, install_into

EXAMPLES = Path(__file__).parents[2] / "examples"
# The image's interpreter stands in as the system python3; ARCHAMI_AGENT_PYTHON picks another (e.g. a 3.13
# like Arch's) to run the same tests against it.
SYSTEM_PYTHON = os.environ.get("ARCHAMI_AGENT_PYTHON", "/usr/bin/python3")
ROOT_MACHINE_ID = "5f3c1a0e9b7d4c2a8e6f1b3d5a7c9e01"


@dataclass
class AgentRun:
    returncode: int
    stderr: str
    seconds: float
    status: dict[str, object]

    @property
    def steps(self) -> dict[str, str]:
        """Each step's outcome, from the agent's status file."""
        steps = self.status.get("steps", {})
        assert isinstance(steps, dict)
        return {str(name): str(outcome) for name, outcome in steps.items()}


def make_root(tmp_path: Path, example: str = "debian.toml", **settings: object) -> Path:
    """An image root as the build leaves it: agent installed, passwd, a committed machine-id, no keys."""
    root = tmp_path / "root"
    loaded = load_definition(EXAMPLES / example)
    install_into(root, loaded.specs[0], backend_for(loaded.definition.distro))
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "root").mkdir(mode=0o700, exist_ok=True)
    (root / "etc/machine-id").write_text(ROOT_MACHINE_ID + "\n")
    settings_path = root / "etc/archami/firstboot.json"
    values = json.loads(settings_path.read_text())
    values.update(settings)
    settings_path.write_text(json.dumps(values))
    return root


def run_agent(
    root: Path,
    urls: list[str],
    *,
    phase: str = "all",
    deadline: float = 4.0,
    request_timeout: float = 0.5,
) -> AgentRun:
    argv = [SYSTEM_PYTHON, *PYTHON_FLAGS, str(root / "usr/lib/archami/firstboot.py"), "--root", str(root),
            "--phase", phase, "--deadline", str(deadline), "--request-timeout", str(request_timeout)]
    for url in urls:
        argv += ["--imds-url", url]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=deadline + 120, check=False)
    seconds = time.monotonic() - started
    status_path = root / f"var/lib/archami/firstboot/status-{phase}.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    return AgentRun(result.returncode, result.stderr, seconds, status)


def leftovers(root: Path) -> list[Path]:
    """Temp files of an interrupted atomic write: there must never be any after the agent exits."""
    return [p for p in root.rglob("*") if ".archami-" in p.name]


def authorized_keys(root: Path) -> str | None:
    path = root / "root/.ssh/authorized_keys"
    return path.read_text() if path.exists() else None


def host_key_fingerprints(root: Path) -> dict[str, str]:
    prints = {}
    for pub in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
        out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True, check=True)
        prints[pub.name] = out.stdout.split()[1]
    return prints


def new_key(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return (tmp_path / f"{name}.pub").read_text().strip()
