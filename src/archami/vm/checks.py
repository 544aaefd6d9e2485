"""What the boot test verifies inside a running guest.

Each check is a pure function from command output to a `CheckResult` (unit-tested with recorded outputs);
`GUEST_PROBES` are the shell commands whose output they read.
"""

from __future__ import annotations

from archami.artifacts import CheckResult

MIB = 1024 * 1024
# The GPT backup header and alignment leave up to ~1 MiB at the end of the disk unused.
DISK_END_SLACK = 8 * MIB

# sshd accepts the first login before the boot has finished: the probes wait for it (bounded) first, so
# failed units, mounts and the journal describe the whole boot.
BOOT_WAIT_SECONDS = 180

# All facts the checks need. An SSH login costs seconds under TCG, so they run as one script
# (`probe_script`) in a single session and come back as sections (`split_sections`), in this order.
GUEST_PROBES: dict[str, str] = {
    "system_state": (
        f"timeout {BOOT_WAIT_SECONDS} systemctl is-system-running --wait >/dev/null 2>&1; systemctl is-system-running"
    ),
    "hostname": "cat /proc/sys/kernel/hostname",  # Arch's base has no hostname(1)
    "sshd": "sshd -T 2>/dev/null | grep -Ei '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin) '",
    "root_options": "findmnt -no OPTIONS /",
    "agent": "systemctl show -p ActiveState -p Result -p ExecMainStatus {unit}",
    "failed_units": "systemctl list-units --failed --no-legend --plain",
    "root_geometry": (
        "d=/sys/dev/block/$(mountpoint -d /); "
        "echo $(cat $d/start) $(cat $d/size) $(cat $d/../size); "
        "tune2fs -l /dev/$(sed -n 's/^DEVNAME=//p' $d/uevent) | grep -E '^Block (count|size):'"
    ),
    "machine_id": "cat /etc/machine-id",
    "kernel": "uname -r",
    "machine": "uname -m",
    # Touch every fstab mount point once (an automount point mounts on access), then list what is mounted.
    "fstab": (
        "awk '$1 !~ /^#/ && NF >= 3 && $2 ~ /^\\// {print $2}' /etc/fstab | "
        "while read -r m; do ls -d \"$(printf '%b' \"$m\")/.\" >/dev/null 2>&1; done; cat /etc/fstab"
    ),
    "fstab_verify": "findmnt --fstab --verify; echo rc=$?",
    "mounts": "cat /proc/self/mounts",
    "journal": "journalctl -b -q --no-pager -o short-monotonic",
}
SECTION_MARK = "@@archami-probe "


def probe_script(agent_unit: str) -> str:
    """One shell script printing every probe's output after a marker line naming it."""
    parts = [f"echo '{SECTION_MARK}{name}'; {{ {command.replace('{unit}', agent_unit)} ; }} 2>&1"
             for name, command in GUEST_PROBES.items()]
    return "\n".join(parts) + "\n"


def split_sections(output: str) -> dict[str, str]:
    """Inverse of probe_script: probe name -> its output (a missing probe maps to '')."""
    sections = dict.fromkeys(GUEST_PROBES, "")
    name: str | None = None
    for line in output.splitlines(keepends=True):
        if line.startswith(SECTION_MARK):
            name = line[len(SECTION_MARK):].strip()
            sections[name] = ""
        elif name is not None:
            sections[name] += line
    return sections


def check_hostname(actual: str, expected: str) -> CheckResult:
    """EC2's hostname is a FQDN ('ip-10-0-0-15.ec2.internal'); agents may set it whole or its first label."""
    actual = actual.strip()
    ok = actual in (expected, expected.split(".", 1)[0])
    return CheckResult(name="hostname from metadata", ok=ok, detail=f"{actual!r} (metadata: {expected!r})")


def parse_sshd_settings(output: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in output.splitlines():
        fields = line.strip().split(None, 1)
        if len(fields) == 2:
            settings[fields[0].lower()] = fields[1].strip().lower()
    return settings


def check_key_only_ssh(sshd_output: str, methods_offered: list[str] | None) -> CheckResult:
    """Key-only SSH: the effective sshd config says no to passwords AND a real password attempt is refused
    by a server that offers nothing but public keys."""
    settings = parse_sshd_settings(sshd_output)
    problems = []
    if settings.get("passwordauthentication") != "no":
        problems.append(f"sshd -T passwordauthentication={settings.get('passwordauthentication', '?')}")
    if settings.get("kbdinteractiveauthentication", "no") != "no":
        problems.append("keyboard-interactive authentication is on")
    if methods_offered is None:
        problems.append("the password attempt was not refused with a method list")
    elif set(methods_offered) - {"publickey"}:
        problems.append(f"server offers {','.join(methods_offered)}")
    detail = "; ".join(problems) or f"passwords refused; server offers {','.join(methods_offered or [])}"
    return CheckResult(name="key-only SSH", ok=not problems, detail=detail)


def check_root_read_write(options: str) -> CheckResult:
    flags = options.strip().split(",")
    return CheckResult(name="root filesystem read-write", ok="rw" in flags, detail=options.strip())


def check_unit_succeeded(show_output: str, unit: str) -> CheckResult:
    """A oneshot agent that ran and stayed 'active' (RemainAfterExit) with Result=success, exit status 0."""
    props = dict(line.split("=", 1) for line in show_output.splitlines() if "=" in line)
    ok = (
        props.get("ActiveState") == "active"
        and props.get("Result") == "success"
        and props.get("ExecMainStatus", "0") == "0"
    )
    detail = ", ".join(f"{k}={props.get(k, '?')}" for k in ("ActiveState", "Result", "ExecMainStatus"))
    return CheckResult(name=f"first-boot agent ({unit})", ok=ok, detail=detail)


def check_machine(output: str, architecture: str) -> CheckResult:
    """The guest runs on the CPU architecture the image was built for (`uname -m`: x86_64, aarch64)."""
    actual = output.strip()
    return CheckResult(name="CPU architecture", ok=actual == architecture, detail=f"{actual!r} (image: {architecture})")


def check_no_failed_units(output: str) -> CheckResult:
    units = [line.split()[0] for line in output.splitlines() if line.strip()]
    return CheckResult(name="no failed systemd units", ok=not units, detail=", ".join(units) or "none")


def parse_root_geometry(output: str) -> tuple[int, int, int, int] | None:
    """(partition start bytes, partition bytes, disk bytes, filesystem bytes) from the root_geometry probe."""
    lines = output.strip().splitlines()
    try:
        start, size, disk = (int(v) * 512 for v in lines[0].split())  # sysfs counts 512-byte sectors
        values = {k.strip(): int(v) for k, v in (line.split(":", 1) for line in lines[1:])}
        return start, size, disk, values["Block count"] * values["Block size"]
    except (IndexError, ValueError, KeyError):
        return None


def check_root_fills_disk(output: str, expected_disk: int) -> CheckResult:
    """The root partition reaches the end of the volume and the filesystem fills the partition (grow-root)."""
    geometry = parse_root_geometry(output)
    name = "root filesystem fills the volume"
    if geometry is None:
        return CheckResult(name=name, ok=False, detail=f"unreadable: {output.strip()[:200]!r}")
    start, size, disk, fs_bytes = geometry
    problems = []
    if disk != expected_disk:
        problems.append(f"volume is {disk} bytes, expected {expected_disk}")
    if start + size < disk - DISK_END_SLACK:
        problems.append(f"partition ends {(disk - start - size) // MIB} MiB before the end of the volume")
    if fs_bytes < size - MIB:
        problems.append(f"filesystem is {(size - fs_bytes) // MIB} MiB smaller than its partition")
    detail = "; ".join(problems) or f"filesystem {fs_bytes // MIB} MiB on a {disk // MIB} MiB volume"
    return CheckResult(name=name, ok=not problems, detail=detail)
