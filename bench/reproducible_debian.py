"""Build the Debian example twice and print both image sha256s and build times side by side.

    .venv/bin/python bench/reproducible_debian.py [--runs N]

Each run is `archami build --check-reproducible`: a build, then a second one later in another directory from
the root cache the first filled. Prints every pair, the median
build time of first and second builds, and the machine's load average (the host is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from archami.config import load_definition, select
from archami.image.reprocheck import check_reproducible

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "debian.toml"
VARIANT = "trixie-ebs-hvm-x86_64"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    loaded = load_definition(EXAMPLE)
    (variant,) = select(loaded.variants, VARIANT)
    firsts, seconds, same = [], [], 0
    print(f"{'run':>3}  {'first build sha256':64}  {'s':>6}  {'second build sha256':64}  {'s':>6}")
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="archami-bench-repro-") as out:
            report = check_reproducible(loaded, variant, Path(out))
        a, b = report.first.manifest, report.second.manifest
        firsts.append(a.build_seconds)
        seconds.append(b.build_seconds)
        same += report.reproducible
        where = report.difference.summary() if report.difference else "sha256 differs"
        verdict = "" if report.reproducible else f"  DIFFERENT: {where}"
        print(f"{run:>3}  {a.image_sha256}  {a.build_seconds:6.1f}  {b.image_sha256}  {b.build_seconds:6.1f}{verdict}")
    print(f"reproducible {same}/{args.runs}; median build {statistics.median(firsts):.1f} s / "
          f"{statistics.median(seconds):.1f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
