"""The seed's A/B reboot experiment on local VMs: the same image with and without the sshd ordering drop-in
(`ssh.after_network`), N instances x M reboots each, interleaved; prints the summary table, the plot's
path, wall time and host CPU.

    python bench/fleet_ab.py --variant trixie-ebs-hvm-x86_64 --instances 4 --reboots 10 --out out/fleet-ab

Builds both variants with `archami build` (the second from a copy of the definition with
`after_network = false`), then runs `archami fleet IMAGE --compare IMAGE2`. Needs root (the build).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHAMI = [sys.executable, "-c", "import sys; sys.argv[0] = 'archami'; from archami.cli import main; main()"]


def without_drop_in(definition: str) -> str:
    lines = definition.splitlines()
    if "[ssh]" not in lines:
        return definition + "\n[ssh]\nafter_network = false\n"
    index = lines.index("[ssh]")
    return "\n".join([*lines[: index + 1], "after_network = false", *lines[index + 1:]]) + "\n"


def build(definition: Path, variant: str, out: Path) -> Path:
    subprocess.run([*ARCHAMI, "build", str(definition), "--variant", variant, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out / variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--definition", type=Path, default=REPO / "examples" / "debian.toml")
    parser.add_argument("--variant", required=True, help="the variant id to build, e.g. trixie-ebs-hvm-x86_64")
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--reboots", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "fleet-ab")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stripped = args.out / "without-drop-in.toml"
    stripped.write_text(without_drop_in(args.definition.read_text()))
    with_image = build(args.definition, args.variant, args.out / "with")
    without_image = build(stripped, args.variant, args.out / "without")
    started = time.monotonic()
    subprocess.run([*ARCHAMI, "fleet", str(with_image), "--label", "after-network", "--compare", str(without_image),
                    "--compare-label", "no-drop-in", "--instances", str(args.instances), "--reboots",
                    str(args.reboots), "--out", str(args.out / "report")], check=True)
    report = json.loads((args.out / "report" / "fleet-report.json").read_text())
    print(f"wall {time.monotonic() - started:.0f}s; host: {report['host']}")


if __name__ == "__main__":
    main()
