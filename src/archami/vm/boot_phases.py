"""Where a boot's seconds went, from what the guest's systemd and kernel clock say (bench/boot_debian.py).

Pure: text in, seconds out. The guest's CLOCK_MONOTONIC starts with the kernel, systemd records its own
start and each unit's activation on that clock (`systemctl show`), and one probe of /proc/uptime at a known
host time places the guest's clock zero on the host's clock, i.e. after the firmware and GRUB. So a boot
(QEMU start to the first SSH login that worked) splits into four parts that add up to the whole:

    firmware + GRUB  QEMU start -> the kernel's clock starts
    kernel -> init   kernel and initramfs, until systemd starts in the real root (UserspaceTimestamp)
    init -> sshd     until the SSH unit is active (Type=notify: sshd listens)
    first login      until the host's first login with the metadata key returned (client, key exchange,
                     PAM session; `login_accepted` splits off the part before sshd accepted the key)
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace


def timestamps_script(ssh_unit: str) -> str:
    """Run in the guest after the first login: the manager's and the SSH unit's timestamps (µs of
    CLOCK_MONOTONIC) and the journal line of the first accepted key."""
    return (
        "systemctl show -p UserspaceTimestampMonotonic -p InitRDTimestampMonotonic; "
        f"systemctl show {ssh_unit} -p ActiveEnterTimestampMonotonic; "
        "journalctl -b -q --no-pager -o short-monotonic | grep -m1 'Accepted publickey'"
    )


@dataclass(frozen=True)
class BootPhases:
    firmware_grub: float | None  # None: the guest's clock did not keep time (clock_rate)
    kernel_to_init: float | None
    init_to_sshd: float | None
    first_login: float | None
    total: float
    login_accepted: float | None = None  # sshd listening -> sshd accepted the key (part of first_login)
    # CPU seconds QEMU used until the first login (user + system, all vCPU threads): the guest's work under
    # TCG, which a busy host stretches in wall time but hardly changes; idle waits (timers, DHCP) cost none.
    qemu_cpu: float | None = None

    @staticmethod
    def names() -> list[str]:
        return [f.name for f in fields(BootPhases)]


def parse_properties(text: str) -> dict[str, str]:
    """`systemctl show` output: KEY=VALUE lines (other lines ignored)."""
    props = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z]+", key):
            props[key] = value.strip()
    return props


def parse_uptime(text: str) -> float:
    """/proc/uptime's first field: seconds since the kernel's clock started."""
    return float(text.split()[0])


_MONOTONIC = re.compile(r"^\[\s*(\d+\.\d+)\]")


def accepted_at(text: str) -> float | None:
    """Guest seconds of the first 'Accepted publickey' line of `journalctl -o short-monotonic` output."""
    for line in text.splitlines():
        match = _MONOTONIC.match(line.strip())
        if match and "Accepted publickey" in line:
            return float(match.group(1))
    return None


def process_cpu_seconds(stat_text: str, clock_ticks: int) -> float:
    """utime + stime of a /proc/PID/stat line (fields 14 and 15; the command name may hold spaces)."""
    fields_after_name = stat_text.rsplit(")", 1)[1].split()
    return (int(fields_after_name[11]) + int(fields_after_name[12])) / clock_ticks


def split_boot(total: float, kernel_zero: float, guest_text: str, qemu_cpu: float | None = None) -> BootPhases:
    """The four parts of a boot of `total` host seconds whose guest clock started `kernel_zero` host seconds
    after QEMU did, from the output of `timestamps_script`. Raises ValueError on missing timestamps."""
    props = parse_properties(guest_text)
    userspace = int(props.get("UserspaceTimestampMonotonic", "0")) / 1e6
    sshd = int(props.get("ActiveEnterTimestampMonotonic", "0")) / 1e6
    if userspace <= 0 or sshd <= userspace:
        raise ValueError(f"no usable systemd timestamps in {guest_text[:200]!r}")
    accepted = accepted_at(guest_text)
    return BootPhases(
        firmware_grub=round(kernel_zero, 2),
        kernel_to_init=round(userspace, 2),
        init_to_sshd=round(sshd - userspace, 2),
        first_login=round(total - kernel_zero - sshd, 2),
        total=round(total, 2),
        login_accepted=None if accepted is None else round(accepted - sshd, 2),
        qemu_cpu=None if qemu_cpu is None else round(qemu_cpu, 2),
    )


_ANALYZE_PART = re.compile(r"((?:\d+min )?\d+(?:\.\d+)?(?:ms|s|min)) \((\w+)\)")
_ANALYZE_TIME = re.compile(r"(?:(\d+)min ?)?(?:(\d+(?:\.\d+)?)(ms|s))?")


def analyze_seconds(value: str) -> float:
    """'1min 2.345s', '17.493s', '950ms' -> seconds."""
    match = _ANALYZE_TIME.fullmatch(value.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"not a systemd-analyze time: {value!r}")
    minutes, number, unit = match.groups()
    seconds = int(minutes or 0) * 60.0
    if number is not None:
        seconds += float(number) / (1000.0 if unit == "ms" else 1.0)
    return seconds


def parse_analyze(text: str) -> dict[str, float]:
    """`systemd-analyze`'s 'Startup finished in 5.638s (kernel) + 17.493s (userspace) = 23.132s':
    {'kernel': 5.638, 'userspace': 17.493} (and firmware, loader, initrd when it names them)."""
    line = next((x for x in text.splitlines() if x.startswith("Startup finished in ")), "")
    return {name: analyze_seconds(value) for value, name in _ANALYZE_PART.findall(line)}


CLOCK_RATE_TOLERANCE = 0.05


def clock_rate(first: tuple[float, float], second: tuple[float, float]) -> float:
    """Guest seconds per host second between two (host time, guest uptime) probes. Under TCG on a busy host
    the guest kernel can calibrate its TSC wrongly; its clock then runs fast or slow, and every phase read
    from it is wrong (a boot here gave firmware + GRUB -43 s)."""
    (host_a, guest_a), (host_b, guest_b) = first, second
    if host_b <= host_a:
        raise ValueError("the probes must be apart in host time")
    return (guest_b - guest_a) / (host_b - host_a)


def without_guest_clock(phases: BootPhases) -> BootPhases:
    """The boot's total only: its guest clock did not keep time (see clock_rate)."""
    return replace(phases, firmware_grub=None, kernel_to_init=None, init_to_sshd=None, first_login=None,
                   login_accepted=None)


def medians(samples: Iterable[BootPhases]) -> dict[str, float | None]:
    """Per phase, the median over the boots that have it."""
    rows = list(samples)
    result: dict[str, float | None] = {}
    for name in BootPhases.names():
        values: Sequence[float] = [v for v in (getattr(r, name) for r in rows) if v is not None]
        result[name] = round(statistics.median(values), 2) if values else None
    return result
