"""CLI start-up: median wall time of `archami --help`, `validate` and `plan`, beside `python -c pass`.

Each command runs in a fresh interpreter with a source tree's `src/` first on PYTHONPATH: this worktree, and
optionally other trees or git revisions (`--compare main`, `--compare dcb8f3e`, `--compare /work/main`), so a
before and an after figure come from the same run under the same load. Runs are interleaved (every tree and
command once per round) and one untimed round first writes the bytecode caches. The definitions are this
tree's examples for every column, so only the code differs. Beside each wall-clock median, in brackets, the
median CPU time (user + system) of the process: on a loaded machine wall time grows, CPU time much less.

    .venv/bin/python bench/cli_startup.py --compare dcb8f3e [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Definitions an older tree can read too (`--compare` with a revision from before a schema change).
DEBIAN_DEFINITION = os.environ.get("ARCHAMI_BENCH_DEBIAN", str(REPO / "examples/debian.toml"))
ARCH_DEFINITION = os.environ.get("ARCHAMI_BENCH_ARCH", str(REPO / "examples/arch.toml"))
MAIN = "from archami.cli import main; main()"
COMMANDS: dict[str, list[str]] = {
    "python -c pass (anchor)": ["-c", "pass"],
    "archami --help": ["-c", MAIN, "--help"],
    "archami validate examples/debian.toml": ["-c", MAIN, "validate", DEBIAN_DEFINITION],
    "archami plan examples/arch.toml": ["-c", MAIN, "plan", ARCH_DEFINITION],
}


@dataclass(frozen=True)
class Tree:
    label: str
    src: Path


def tree_from(spec: str, scratch: Path) -> Tree:
    """A directory holding src/archami, or a git revision of this repository extracted into SCRATCH."""
    path = Path(spec)
    if (path / "src" / "archami").is_dir():
        return Tree(spec, path / "src")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", spec, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        sys.exit(f"{spec}: neither a source tree nor a git revision ({archive.stderr.decode().strip()})")
    target = scratch / spec.replace("/", "_")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", spec], capture_output=True, text=True)
    return Tree(f"{spec} ({commit.stdout.strip()})" if commit.stdout.strip() != spec else spec, target / "src")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(python: str, tree: Tree, args: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run."""
    env = {**os.environ, "PYTHONPATH": str(tree.src), "COLUMNS": "100"}
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run([python, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if result.returncode != 0:
        sys.exit(f"{tree.label}: {' '.join(args[2:])} exited {result.returncode}: {result.stderr.decode()[-500:]}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command and tree (default 10)")
    parser.add_argument("--compare", action="append", default=[], metavar="REV|DIR",
                        help="another tree or git revision to time in the same run (repeatable)")
    parser.add_argument("--python", default=sys.executable, help="interpreter (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-startup") as scratch:
        trees = [tree_from(spec, Path(scratch)) for spec in args.compare] + [Tree("this tree", REPO / "src")]
        times: dict[tuple[str, str], list[tuple[float, float]]] = {(t.label, c): [] for t in trees for c in COMMANDS}
        for round_ in range(args.runs + 1):
            for command, argv in COMMANDS.items():
                for tree in trees:
                    timing = run_once(args.python, tree, argv)
                    if round_ > 0:  # round 0 writes the bytecode caches
                        times[(tree.label, command)].append(timing)
    width = max(len(c) for c in COMMANDS)
    columns = [t.label for t in trees]
    print(f"median of {args.runs} runs: wall seconds (CPU seconds); {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'':{width}}  " + "  ".join(f"{c:>20}" for c in columns))
    for command in COMMANDS:
        cells = []
        for label in columns:
            runs = times[(label, command)]
            wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
            cells.append(f"{wall:.3f} ({cpu:.3f})")
        print(f"{command:{width}}  " + "  ".join(f"{c:>20}" for c in cells))


if __name__ == "__main__":
    main()
