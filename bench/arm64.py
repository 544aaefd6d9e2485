"""What the Graviton (aarch64) variant costs on this x86_64 machine, next to the x86_64 one.

    .venv/bin/python bench/arm64.py [--builds N] [--boots N] [--qemu-cpu-max]

For examples/debian.toml's trixie variants, x86_64 and aarch64:
  full build   a bootstrap with a warm package cache (root cache bypassed): for aarch64 every maintainer
               script, dpkg itself, update-initramfs and grub-mkimage run under qemu-user
  emulation    (aarch64 - x86_64) / aarch64 of the full-build medians: the share of the arm64 build that is
               the price of emulating it (the package sets differ only in the kernel and GRUB)
  boot to SSH  UEFI boot tests (aarch64: qemu-system-aarch64 virt under TCG; x86_64: q35 + OVMF)
  allocated    bytes each sparse image allocates
--qemu-cpu-max adds aarch64 builds with QEMU_CPU=max (qemu-user's default CPU, with pointer authentication
emulated in software), to show what archami's QEMU_CPU=neoverse-n1 saves. The host is shared: the load
average is printed, and figures taken under load are not the tool's own speed.
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
from archami.vm.boot import boot_test

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "debian.toml"
VARIANTS = {"x86_64": "trixie-ebs-hvm-x86_64", "aarch64": "trixie-ebs-hvm-aarch64"}


def _build(variant_id: str, out: Path, cache: Path, refresh: bool) -> tuple[float, Path, int]:
    loaded = load_definition(EXAMPLE)
    variant = select(loaded.variants, variant_id)[0]
    started = time.monotonic()
    result = build_variant(loaded, variant, out, cache, refresh_root=refresh)
    return time.monotonic() - started, result.image, result.manifest.used_bytes


def _line(name: str, runs: list[float]) -> str:
    return f"  {name:<26} median {statistics.median(runs):7.1f} s   runs: {' '.join(f'{r:.1f}' for r in runs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=1, help="full builds per architecture")
    parser.add_argument("--boots", type=int, default=3, help="UEFI boots per architecture")
    parser.add_argument("--qemu-cpu-max", action="store_true", help="also build aarch64 with QEMU_CPU=max")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args()
    builds: dict[str, list[float]] = {}
    boots: dict[str, list[float]] = {}
    used: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="archami-bench-") as tmp:
        work = Path(tmp)
        for arch, variant_id in VARIANTS.items():
            _seconds, image, used[arch] = _build(variant_id, work / "out", args.cache, refresh=False)  # warm-up
            builds[f"full build {arch}"] = [
                _build(variant_id, work / "out", args.cache, refresh=True)[0] for _ in range(args.builds)
            ]
            if arch == "aarch64" and args.qemu_cpu_max:
                os.environ["QEMU_CPU"] = "max"
                try:
                    builds["full build aarch64 cpu=max"] = [
                        _build(variant_id, work / "out", args.cache, refresh=True)[0] for _ in range(args.builds)
                    ]
                finally:
                    del os.environ["QEMU_CPU"]
            boots[arch] = []
            for _ in range(args.boots):
                report = boot_test(image, "uefi", report_dir=work)
                print(f"{arch} uefi boot: {report.boot_to_ssh_seconds}s to SSH, ok={report.ok}", flush=True)
                if report.boot_to_ssh_seconds is not None:
                    boots[arch].append(report.boot_to_ssh_seconds)
    load = os.getloadavg()
    print(f"archami arm64 bench: {EXAMPLE.name}, {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}")
    for name, runs in builds.items():
        print(_line(name, runs))
    x86, arm = (statistics.median(builds[f"full build {a}"]) for a in ("x86_64", "aarch64"))
    print(f"  emulation share of the aarch64 build: {(arm - x86) / arm:.0%} ({arm - x86:.0f} s of {arm:.0f} s)")
    for arch, runs in boots.items():
        if runs:
            print(_line(f"boot to SSH {arch} (uefi)", runs))
    for arch, allocated in used.items():
        print(f"  allocated {arch:<16} {allocated / 1e6:7.0f} MB")


if __name__ == "__main__":
    main()
