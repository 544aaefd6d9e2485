"""Measure how long archami takes to build the Debian example, and how big the image is.

    .venv/bin/python bench/build_debian.py [--full N] [--config-only N] [--out DIR]

Prints, for the examples/debian.toml trixie (stable) variant:
  full        a bootstrap with a warm package cache (root cache bypassed): target <= 50 s
  config-only a rebuild after a config-only change (cached root, cached initramfs): target <= 15 s
  allocated   bytes the sparse image allocates: target <= 350 MB
with the median, every run, the ratio median/target, and the machine's load average (the host is shared:
figures taken under load are not the tool's own speed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from archami.config import load_definition, select
from archami.image.cache import DEFAULT_CACHE_DIR
from archami.image.pipeline import build_variant

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "debian.toml"
VARIANT = "trixie-ebs-hvm-x86_64"
TARGETS = {"full": 50.0, "config-only": 15.0}


def _edited(directory: Path, run: int) -> Path:
    """The example with a config-only change (an sshd setting and a file), different on every run."""
    text = EXAMPLE.read_text().replace("[ssh]\n", '[ssh]\npermit_root_login = "no"\n')
    text += f'\n[[files]]\npath = "/etc/motd"\ncontent = "bench run {run}\\n"\n'
    path = directory / f"debian-{run}.toml"
    path.write_text(text)
    return path


def _timed(definition: Path, out: Path, cache: Path, refresh: bool) -> tuple[float, int, bool]:
    loaded = load_definition(definition)
    variant = select(loaded.variants, VARIANT)[0]
    started = time.monotonic()
    result = build_variant(loaded, variant, out, cache, refresh_root=refresh)
    return time.monotonic() - started, result.manifest.used_bytes, bool(result.manifest.root_cache_hit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", type=int, default=1, help="full builds (bootstrap, warm package cache)")
    parser.add_argument("--config-only", type=int, default=3, help="config-only rebuilds")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="archami-bench-") as tmp:
        work = Path(tmp)
        # Warm-up: the package cache and the root cache exist after this (not timed).
        _timed(EXAMPLE, work / "out", args.cache, refresh=False)
        results: dict[str, list[float]] = {"full": [], "config-only": []}
        used: list[int] = []
        for _ in range(args.full):
            seconds, allocated, _hit = _timed(EXAMPLE, work / "out", args.cache, refresh=True)
            results["full"].append(seconds)
            used.append(allocated)
        for run in range(args.config_only):
            seconds, allocated, hit = _timed(_edited(work, run), work / "out", args.cache, refresh=False)
            assert hit, "a config-only change must reuse the cached root"
            results["config-only"].append(seconds)
            used.append(allocated)
    load = os.getloadavg()
    print(f"archami build bench: {VARIANT} of {EXAMPLE.name}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for name, runs in results.items():
        if not runs:
            continue
        median = statistics.median(runs)
        shown = " ".join(f"{r:.1f}" for r in runs)
        print(f"  {name:<12} median {median:6.1f} s  target {TARGETS[name]:4.0f} s  ratio {median / TARGETS[name]:.2f}"
              f"   runs: {shown}")
    if used:
        print(f"  allocated    {max(used) / 1e6:6.1f} MB target  350 MB  ratio {max(used) / 350e6:.2f}")


if __name__ == "__main__":
    main()
