"""Boot to SSH of the Debian stable image under TCG: archami's agent beside the same image with cloud-init,
N boots each per firmware, the medians of every phase side by side.

    .venv/bin/python bench/boot_debian.py [-n 5] [--firmware bios uefi] [--out /tmp/archami-bench-boot]
        [--agent-image out/trixie-ebs-hvm-x86_64/image.raw] [--cloud-init-image …/image.raw]
        [--extra before=/tmp/old/trixie-ebs-hvm-x86_64/image.raw]   # more columns, e.g. the previous commit's

Without images it builds examples/debian.toml's trixie-ebs-hvm-x86_64 and its `cloudinit` flavour (caches in
/var/cache/archami: a second run rebuilds nothing but the disk). Boots are interleaved (agent, cloud-init, per
firmware, round after round), so a change of host load falls on both alike; `uptime` is printed before each
boot and at the end. Phases (archami.vm.boot_phases): firmware + GRUB from one probe of the guest's uptime
over an open SSH session; kernel -> init and init -> sshd from systemd's timestamps in the guest; first login
is the rest, to the host's first login with the metadata key. Every boot runs the boot test's checks (boot
health included): a failed check is printed with the boot and counted (green/timed) under the table.
Targets: agent total <= 30 s per firmware, agent/cloud-init <= 0.7.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Literal

from archami.config import load_definition, select
from archami.distro.rules import DEBIAN
from archami.image.pipeline import build_variant
from archami.runner import spawn, stop
from archami.vm import boot_phases, ssh
from archami.vm.boot import random_instance, run_checks
from archami.vm.guest import Guest, running_guest
from archami.vm.qemu import disk_virtual_size, make_overlay

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "debian.toml"
CACHE = Path("/var/cache/archami")
AGENT_VARIANT = "trixie-ebs-hvm-x86_64"
CLOUD_INIT_VARIANT = "trixie-ebs-hvm-cloudinit-x86_64"
Firmware = Literal["bios", "uefi"]
PHASE_TITLES = {
    "firmware_grub": "firmware + GRUB",
    "kernel_to_init": "kernel -> init",
    "init_to_sshd": "init -> sshd listening",
    "first_login": "first login",
    "login_accepted": "  of which until key accepted",
    "total": "boot to SSH (total)",
    "qemu_cpu": "QEMU CPU s to first login",
}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def build_images(out: Path) -> dict[str, Path]:
    """The stable image with archami's agent and the same with the cloudinit flavour (cached inputs)."""
    loaded = load_definition(EXAMPLE)
    agent = build_variant(loaded, select(loaded.variants, AGENT_VARIANT)[0], out / "agent", CACHE).image
    matrix = 'virtualization = ["hvm"]\n'
    text = EXAMPLE.read_text()
    assert matrix in text, "examples/debian.toml's matrix changed: update the bench"
    definition = out / "debian-cloud-init.toml"
    definition.write_text(text.replace(matrix, matrix + 'flavour = ["cloudinit"]\n'))
    loaded = load_definition(definition)
    spec = select(loaded.specs, CLOUD_INIT_VARIANT)[0]
    cloud_init = build_variant(loaded, spec, out / "cloud-init", CACHE).image
    return {"agent": agent, "cloud-init": cloud_init}


def uptime_probe(guest: Guest, probes: int = 5) -> tuple[float, float]:
    """(host monotonic time, guest uptime) at one instant: /proc/uptime read over one open SSH session (a
    round trip of milliseconds, not a login's seconds), at the midpoint of the fastest of `probes`."""
    argv = ssh.ssh_argv(guest.ssh_port, guest.key.private, "while read -r _; do cat /proc/uptime; done")
    proc = spawn(argv, stdin=PIPE, stdout=PIPE, stderr=DEVNULL, text=True)
    best: tuple[float, float, float] | None = None
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for _ in range(probes):
            sent = time.monotonic()
            proc.stdin.write("\n")
            proc.stdin.flush()
            uptime = boot_phases.parse_uptime(proc.stdout.readline())
            came = time.monotonic()
            if best is None or came - sent < best[0]:
                best = (came - sent, (sent + came) / 2, uptime)
    finally:
        stop(proc)
    assert best is not None
    return best[1], best[2]


def qemu_cpu_seconds(guest: Guest) -> float | None:
    """QEMU's CPU seconds so far (read right after the first login)."""
    try:
        stat = Path(f"/proc/{guest.vm.pid}/stat").read_text()
    except OSError:
        return None
    return boot_phases.process_cpu_seconds(stat, os.sysconf("SC_CLK_TCK"))


def boot_once(
    image: Path, firmware: Firmware, work: Path, keep_text: Path | None
) -> tuple[boot_phases.BootPhases, list[str]]:
    """One boot: log in, place the guest's clock, read systemd's timestamps, run every boot-test check;
    the phases and the checks that failed."""
    work.mkdir(parents=True, exist_ok=True)
    overlay = work / "disk.qcow2"
    overlay.unlink(missing_ok=True)
    make_overlay(image, overlay)
    key = ssh.generate_keypair(work)
    instance = replace(random_instance(), public_keys={"bench": key.public_line})
    with running_guest(overlay, firmware, instance, key, work, clean_shutdown=False) as guest:
        cpu = qemu_cpu_seconds(guest)
        first = uptime_probe(guest)
        assert guest.vm.started_at is not None
        stamps = guest.output(boot_phases.timestamps_script(DEBIAN.ssh_service))
        phases = boot_phases.split_boot(guest.boot_seconds, first[0] - first[1] - guest.vm.started_at, stamps, cpu)
        results, _ = run_checks(guest, instance, disk_virtual_size(overlay))
        rate = boot_phases.clock_rate(first, uptime_probe(guest))  # the checks took tens of seconds
        if abs(rate - 1) > boot_phases.CLOCK_RATE_TOLERANCE:
            print(f"  guest clock ran at {rate:.2f}x the host's: phases left out, total kept", flush=True)
            phases = boot_phases.without_guest_clock(phases)
        if keep_text is not None:
            analysis = guest.output(f"systemd-analyze; systemd-analyze critical-chain {DEBIAN.ssh_service}; "
                                    "systemd-analyze blame | head -25", timeout=120)
            keep_text.write_text(analysis)
    return phases, [f"{c.name}: {c.detail}" for c in results if not c.ok]


def table(samples: dict[tuple[str, str], list[boot_phases.BootPhases]], green: dict[tuple[str, str], int],
          kinds: list[str], firmwares: list[str]) -> str:
    columns = [(kind, fw) for fw in firmwares for kind in kinds]
    medians = {col: boot_phases.medians(samples[col]) for col in columns}
    head = f"{'median seconds':32}" + "".join(f"{kind + ' ' + fw:>17}" for kind, fw in columns)
    lines = [head, "-" * len(head)]
    for name, title in PHASE_TITLES.items():
        cells = [medians[col][name] for col in columns]
        lines.append(f"{title:32}" + "".join(f"{'-' if v is None else f'{v:.1f}':>17}" for v in cells))
    lines.append(f"{'boots: all checks green/timed':32}"
                 + "".join(f"{f'{green[col]}/{len(samples[col])}':>17}" for col in columns))
    for fw in firmwares:
        if "agent" not in kinds or "cloud-init" not in kinds:
            continue
        agent, cloud = medians[("agent", fw)]["total"], medians[("cloud-init", fw)]["total"]
        if agent and cloud:
            lines.append(f"{fw}: agent/cloud-init = {agent / cloud:.2f} (target <= 0.7); agent total {agent:.1f} s "
                         f"(target <= 30)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="boots per image and firmware (default 5)")
    parser.add_argument("--firmware", nargs="+", choices=["bios", "uefi"], default=["bios", "uefi"])
    parser.add_argument("--agent-image", type=Path, help="image.raw with archami's agent (default: build it)")
    parser.add_argument("--cloud-init-image", type=Path, help="image.raw with cloud-init (default: build it)")
    parser.add_argument("--only", choices=["agent", "cloud-init"], help="boot one of the two images only")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=IMAGE",
                        help="boot this image too, in the same rounds (e.g. a build of the previous commit)")
    parser.add_argument("--out", type=Path, help="where builds and systemd-analyze outputs go (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="archami-bench-boot-"))
    out.mkdir(parents=True, exist_ok=True)
    images = build_images(out) if not (args.agent_image and args.cloud_init_image) else {}
    images = {"agent": args.agent_image or images["agent"], "cloud-init": args.cloud_init_image or images["cloud-init"]}
    kinds = [args.only] if args.only else ["agent", "cloud-init"]
    for extra in args.extra:
        name, _, path = extra.partition("=")
        images[name] = Path(path)
        kinds.append(name)
    print(f"images: {images}\nstart: {load()}", flush=True)
    samples: dict[tuple[str, str], list[boot_phases.BootPhases]] = {
        (kind, fw): [] for kind in kinds for fw in args.firmware}
    green = dict.fromkeys(samples, 0)
    loads = []
    for round_number in range(1, args.n + 1):
        for fw in args.firmware:
            for kind in kinds:
                before = os.getloadavg()[0]
                loads.append(before)
                text = out / f"analyze-{kind}-{fw}.txt" if round_number == 1 else None
                try:
                    phases, failed = boot_once(images[kind], fw, out / "work" / f"{kind}-{fw}", text)
                except Exception as exc:  # a boot without login is a result to report, not the end of the run
                    print(f"round {round_number} {kind:10} {fw}: NO LOGIN ({exc}) [load {before:.2f}]", flush=True)
                    continue
                # Timed either way (a 'before' image may fail a check this commit added); counted as green or not.
                samples[(kind, fw)].append(phases)
                green[(kind, fw)] += not failed
                parts = " ".join(f"{n}={getattr(phases, n)}" for n in boot_phases.BootPhases.names())
                verdict = f" FAILED CHECKS: {'; '.join(failed)}" if failed else ""
                print(f"round {round_number} {kind:10} {fw}: {parts} [load {before:.2f}]{verdict}", flush=True)
    print(f"\nend: {load()}; 1-min load before each boot: median {statistics.median(loads):.2f}, "
          f"max {max(loads):.2f}")
    print(table(samples, green, kinds, args.firmware))
    print(f"systemd-analyze of each first boot: {out}/analyze-*.txt")


if __name__ == "__main__":
    main()
