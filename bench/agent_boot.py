"""The first-boot agent on a real boot: a built image under QEMU, its agent's own figures from the guest.

Boots IMAGE (a qcow2 overlay on a volume larger than the image, so grow-root works) with the local IMDS
and prints, from inside the guest: the early unit's wall time (systemd), the agent's own CPU and steps
(its status file), whether the late unit ran, and the journal lines of the agent. Under TCG emulation the
guest runs 10-50x slower than on EC2; the CPU figure is the guest's own accounting.

    .venv/bin/python bench/agent_boot.py out/trixie-ebs-hvm-x86_64/image.raw [--firmware bios]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Literal

from archami.firstboot.install import EARLY_UNIT, LATE_UNIT
from archami.vm import ssh
from archami.vm.boot import random_instance
from archami.vm.guest import running_guest
from archami.vm.qemu import make_overlay

STATUS = "/var/lib/archami/firstboot/status-early.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--firmware", choices=["bios", "uefi"], default="bios")
    parser.add_argument("--disk-size", type=int, default=3 * 2**30, help="volume bytes (> the image)")
    args = parser.parse_args()
    firmware: Literal["bios", "uefi"] = "uefi" if args.firmware == "uefi" else "bios"
    with tempfile.TemporaryDirectory(prefix="agentboot") as tmp:
        work = Path(tmp)
        overlay = work / "disk.qcow2"
        make_overlay(args.image, overlay, args.disk_size)
        key = ssh.generate_keypair(work)
        instance = random_instance(public_keys={"bench": key.public_line})
        with running_guest(overlay, firmware, instance, key, work) as guest:
            status = json.loads(guest.output(f"cat {STATUS}"))
            timing = guest.output(
                f"systemctl show -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic {EARLY_UNIT}"
            )
            late = guest.run(f"systemctl show -p ConditionResult -p ActiveState {LATE_UNIT}").stdout.split()
            journal = guest.output(f"journalctl -b -o short-monotonic -u {EARLY_UNIT} -u {LATE_UNIT} --no-pager")
            root_size = guest.output("df -B1 --output=size / | tail -1").strip()
            # The same interpreter doing nothing, for scale: emulation makes every start-up slow.
            bare = [float(guest.output("python3 -I -S -c 'import time; print(time.process_time())'"))
                    for _ in range(3)]
    stamps = dict(line.split("=", 1) for line in timing.split())
    exited, started = int(stamps["ExecMainExitTimestampMonotonic"]), int(stamps["ExecMainStartTimestampMonotonic"])
    unit_seconds = (exited - started) / 1e6
    print(f"boot to SSH: {guest.boot_seconds:.1f} s ({guest.accel}, {firmware})")
    print(f"early unit wall time (systemd): {unit_seconds:.2f} s; agent's own steps: {status['seconds']:.2f} s")
    print(f"agent's own CPU (early phase, in the guest): {status['cpu_self'] * 1000:.0f} ms, of which start-up"
          f" {status['startup']['cpu'] * 1000:.0f} ms (start-up wall time {status['startup']['wall']} s)")
    print(f"bare 'python3 -I -S' start-up CPU in the same guest: {min(bare) * 1000:.0f} ms (min of 3)")
    print(f"late unit: {' '.join(late)}")
    print(f"root filesystem: {int(root_size) / 2**30:.2f} GiB on a {args.disk_size / 2**30:.2f} GiB volume")
    print("steps:")
    for name, outcome in status["steps"].items():
        print(f"  {name}: {outcome} ({status['step_seconds'].get(name, 0):.2f} s)")
    print("journal:")
    print(journal)


if __name__ == "__main__":
    main()
