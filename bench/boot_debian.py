"""Boot-to-SSH seconds of the Debian example image under BIOS and UEFI: N boots each, median printed.

    .venv/bin/python bench/boot_debian.py [--image out/trixie-ebs-hvm-x86_64/image.raw] [-n 3]

Without --image it builds examples/debian.toml's trixie (stable) variant first (cache: /var/cache/archami).
Target: median <= 30 s per firmware under TCG. Each boot is a full boot_test (login, checks, power-off).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from archami.vm.boot import boot_test

REPO = Path(__file__).resolve().parents[1]


def build_image(out: Path) -> Path:
    from archami.config import load_definition, select
    from archami.image.pipeline import build_variant

    loaded = load_definition(REPO / "examples" / "debian.toml")
    variant = select(loaded.variants, "trixie-ebs-hvm-x86_64")[0]
    return build_variant(loaded, variant, out, Path("/var/cache/archami")).image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, help="image.raw to boot (default: build the example)")
    parser.add_argument("-n", type=int, default=3, help="boots per firmware")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="archami-bench-") as scratch:
        image = args.image or build_image(Path(scratch) / "build")
        results: dict[str, list[float]] = {"bios": [], "uefi": []}
        for round_number in range(args.n):
            for firmware in ("bios", "uefi"):
                started = time.monotonic()
                report = boot_test(image, firmware, report_dir=Path(scratch))
                total = time.monotonic() - started
                failed = [c.name for c in report.checks if not c.ok]
                print(f"round {round_number + 1} {firmware}: boot to SSH {report.boot_to_ssh_seconds}s, "
                      f"whole test {total:.1f}s, accel {report.accel}, failed checks: {failed or 'none'}",
                      flush=True)
                if report.boot_to_ssh_seconds is not None:
                    results[firmware].append(report.boot_to_ssh_seconds)
        for firmware, seconds in results.items():
            if seconds:
                print(f"{firmware}: median boot to SSH {statistics.median(seconds):.1f}s over {len(seconds)} boots "
                      f"(min {min(seconds):.1f}, max {max(seconds):.1f}); target <= 30 s")
            else:
                print(f"{firmware}: no successful boot")


if __name__ == "__main__":
    main()
