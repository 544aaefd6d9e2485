"""Measure how long the Arch-shaped test repository (tests/archshaped) takes to make, cold and warm.

    .venv/bin/python bench/archshaped.py [--cold] [--warm N] [--cache DIR]

  cold   a fresh cache directory: download the Debian closure, convert, sign, index (--cold; ~110 MiB)
  warm   the cache as it is: reuse the converted tree, hard-link it into a new output directory
Prints each run's steps (fetch, convert, sign+index, link), the median of the warm runs, the package
count and the tree's size, and the machine's load average (the host is shared: figures taken under
load are not the tool's own speed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from archshaped import debs, repo  # noqa: E402


def _run(out: Path, cache: Path) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    shaped = repo.make(out, cache)
    return time.monotonic() - started, shaped.timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="also time a build into an empty cache")
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=debs.default_cache())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-archshaped-") as tmp:
        if args.cold:
            seconds, steps = _run(Path(tmp) / "cold", Path(tmp) / "cache")
            print(f"cold: {seconds:.1f} s  {', '.join(f'{k} {v:.1f} s' for k, v in steps.items())}")
        warm = []
        for run in range(args.warm):
            seconds, steps = _run(Path(tmp) / f"warm-{run}", args.cache)
            warm.append(seconds)
            print(f"warm {run + 1}: {seconds:.2f} s  {', '.join(f'{k} {v:.2f} s' for k, v in steps.items())}")
        if warm:
            print(f"warm median: {statistics.median(warm):.2f} s")
        packages = sorted((Path(tmp) / "warm-0" / "repo").rglob("*.pkg.tar.zst")) if warm else []
        size = sum(p.stat().st_size for p in packages)
        print(f"packages: {len(packages)}, {size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
