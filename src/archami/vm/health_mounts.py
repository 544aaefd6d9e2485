"""Every filesystem in the guest's /etc/fstab really mounted, read from /proc/self/mounts after each mount
point was touched once (an automount point mounts on first access: only an access proves it works).

Pure: fstab and mounts text in, a `CheckResult` out. An autofs point alone does not count as mounted: that is
the very case of an ESP whose device never showed up, where anything written to /boot/efi would otherwise
land in the root filesystem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archami.artifacts import CheckResult

NOT_MOUNTED_TYPES = ("swap", "none", "ignore")  # fstab types that are not filesystems mounted at a path
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: tuple[str, ...]


def _unescape(field: str) -> str:
    """fstab and /proc/mounts write a space in a path as \\040."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_table(text: str) -> list[Mount]:
    """fstab(5) or /proc/self/mounts lines (same first four fields); comments and short lines skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        options = tuple(fields[3].split(",")) if len(fields) > 3 else ("defaults",)
        mounts.append(Mount(_unescape(fields[0]), _unescape(fields[1]), fields[2], options))
    return mounts


def expected(fstab: list[Mount]) -> list[Mount]:
    """The fstab entries that must be mounted after boot: filesystems at a path, unless noauto (an automount
    point with noauto still mounts on access)."""
    return [
        entry for entry in fstab
        if entry.target.startswith("/") and entry.fstype not in NOT_MOUNTED_TYPES
        and ("noauto" not in entry.options or "x-systemd.automount" in entry.options)
    ]


def check_fstab_mounted(fstab_text: str, mounts_text: str) -> CheckResult:
    name = "every fstab entry mounted"
    entries = expected(parse_table(fstab_text))
    if not entries:
        return CheckResult(name=name, ok=False, detail="no filesystem in /etc/fstab (unreadable?)")
    mounted = parse_table(mounts_text)
    problems, good = [], []
    for entry in entries:
        at_target = [m for m in mounted if m.target == entry.target]
        real = [m for m in at_target if m.fstype != "autofs"]
        wanted = entry.fstype.split(",")
        if not at_target:
            problems.append(f"{entry.target} ({entry.fstype}, {entry.source}): not mounted")
        elif not real:
            problems.append(f"{entry.target}: only its automount point; the first access did not mount "
                            f"{entry.source}")
        elif entry.fstype != "auto" and real[-1].fstype not in wanted:
            problems.append(f"{entry.target}: {real[-1].fstype} mounted, fstab says {entry.fstype}")
        else:
            good.append(f"{entry.target} {real[-1].fstype} from {real[-1].source}")
    return CheckResult(name=name, ok=not problems, detail="; ".join(problems) or "; ".join(good))


def check_fstab_verifies(output: str) -> CheckResult:
    """`findmnt --fstab --verify; echo rc=$?`: no errors (warnings are reported, not failed)."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    status = next((line for line in reversed(lines) if line.startswith("rc=")), "rc=?")
    findings = [line for line in lines if line.startswith(("[E]", "[W]"))]
    errors = [line for line in findings if line.startswith("[E]")]
    ok = status == "rc=0" and not errors
    summary = [line for line in lines if not line.startswith("rc=") and line not in findings][-1:]
    detail = "; ".join(errors or findings or summary) or status
    return CheckResult(name="fstab verifies (findmnt --verify)", ok=ok, detail=detail if ok else f"{detail} ({status})")
