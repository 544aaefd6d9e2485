"""The first-boot agent's own CPU time on a boot: the target is <= 100 ms on a normal first boot.

Runs the agent as the image runs it (system python3 -I -S, the installed launcher, one process per unit:
--phase early, then --phase late when early left it work) against the local IMDS, in a fresh root per run,
and prints the median of N runs of the agent processes' own user+sys CPU (time.process_time() when it
writes its status: interpreter start-up and imports included) and of the whole process tree to exit
(ssh-keygen, interpreter shutdown). Scenarios: first boot with the agent byte-compiled (as install_into
leaves it when the build runs as root), first boot without .pyc files, a later boot of the same instance.

    .venv/bin/python bench/agent_cpu.py [-n 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from archami.config import load_definition
from archami.distro import backend_for
from archami.firstboot.install import PYTHON_FLAGS, install_into
from archami.vm.imds import ImdsConfig, ImdsServer

PYTHON = "/usr/bin/python3"
EXAMPLE = Path(__file__).parents[1] / "examples/debian.toml"


def make_root(base: Path, compiled: bool) -> Path:
    root = Path(tempfile.mkdtemp(dir=base))
    loaded = load_definition(EXAMPLE)
    install_into(root, loaded.specs[0], backend_for(loaded.definition.distro))
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "root").mkdir(mode=0o700, exist_ok=True)
    (root / "etc/machine-id").write_text("5f3c1a0e9b7d4c2a8e6f1b3d5a7c9e01\n")
    agent = root / "usr/lib/archami"
    for cache in agent.rglob("__pycache__"):
        shutil.rmtree(cache)
    if compiled:  # what the build does with the image's own python3
        subprocess.run([PYTHON, "-I", "-m", "compileall", "-q", str(agent)], check=True)
    return root


def run_phase(root: Path, url: str, phase: str) -> tuple[float, float, float]:
    """(agent CPU until it wrote its status, CPU of the whole process tree to exit, wall seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [PYTHON, *PYTHON_FLAGS, str(root / "usr/lib/archami/firstboot.py"), "--root", str(root), "--phase", phase,
         "--imds-url", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _, code, usage = os.wait4(proc.pid, 0)  # usage covers the agent and every child it waited for
    proc.returncode = os.waitstatus_to_exitcode(code)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"agent --phase {phase} failed ({proc.returncode})")
    status = json.loads((root / f"var/lib/archami/firstboot/status-{phase}.json").read_text())
    return float(status["cpu_self"]), usage.ru_utime + usage.ru_stime, wall


def boot(root: Path, url: str) -> tuple[float, float, float]:
    """One boot: the early unit, then the late unit only if early left it work (its unit condition)."""
    early = run_phase(root, url, "early")
    if not (root / "run/archami/firstboot-late").exists():
        return early
    late = run_phase(root, url, "late")
    return early[0] + late[0], early[1] + late[1], early[2] + late[2]


def baseline(runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run([PYTHON, *PYTHON_FLAGS, "-c", "import time; print(time.process_time())"],
                             capture_output=True, text=True, check=True).stdout
        samples.append(float(out))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    args = parser.parse_args()
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBS72FDJm5LdY/JnUUKSLLm4v4Ik2Q19XIn/Jl0T1PIz bench"
    config = ImdsConfig(public_keys={"bench": key})
    results: dict[str, list[tuple[float, float, float]]] = {"first boot": [], "first boot, no .pyc": [],
                                                             "later boot": []}
    with tempfile.TemporaryDirectory(prefix="agentcpu") as tmp, ImdsServer(config) as server:
        base = Path(tmp)
        for _ in range(args.runs):
            root = make_root(base, compiled=True)
            results["first boot"].append(boot(root, server.url))
            results["later boot"].append(boot(root, server.url))
            shutil.rmtree(root)
            root = make_root(base, compiled=False)
            results["first boot, no .pyc"].append(boot(root, server.url))
            shutil.rmtree(root)
    print(f"agent CPU per boot (early + late units; Debian example: no RSA, no user-data), median of {args.runs}"
          " runs; target <= 100 ms for 'first boot'")
    print(f"{'scenario':<22}{'agent ms':>10}{'min':>8}{'max':>8}{'with children ms':>18}{'wall ms':>10}")
    for name, samples in results.items():
        own = [s[0] * 1000 for s in samples]
        print(f"{name:<22}{statistics.median(own):>10.1f}{min(own):>8.1f}{max(own):>8.1f}"
              f"{statistics.median(s[1] * 1000 for s in samples):>18.1f}"
              f"{statistics.median(s[2] * 1000 for s in samples):>10.1f}")
    print(f"{'(python3 -I -S -c pass)':<22}{baseline(args.runs) * 1000:>10.1f}   per process, for scale")


if __name__ == "__main__":
    main()
