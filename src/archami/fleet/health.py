"""Is a rebooted instance healthy? One script run over SSH, one parser: the seam where the boot test's named
health checks (vm/) will plug in; until then systemd's own verdict.

`systemctl is-system-running --wait` blocks until start-up has finished and says `running` or `degraded`
(or `starting` if our bound ran out first); `systemctl --failed` names the units that failed.
"""

from __future__ import annotations

from archami.fleet.report import Health

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_MARK = "@@archami-fleet "
STARTUP_BOUND_SECONDS = 120


def after_reboot_script() -> str:
    """Boot id, then the health facts, in one session (a login costs seconds under TCG)."""
    return (
        f"echo '{_MARK}boot_id'; cat {BOOT_ID_PATH}; "
        f"echo '{_MARK}state'; timeout {STARTUP_BOUND_SECONDS} systemctl is-system-running --wait 2>&1; "
        f"echo '{_MARK}failed'; systemctl list-units --failed --no-legend --plain 2>&1; true"
    )


def _sections(output: str) -> dict[str, str]:
    sections: dict[str, str] = {"boot_id": "", "state": "", "failed": ""}
    name: str | None = None
    for line in output.splitlines(keepends=True):
        if line.startswith(_MARK):
            name = line[len(_MARK):].strip()
            sections[name] = ""
        elif name is not None:
            sections[name] += line
    return sections


def parse_after_reboot(output: str) -> tuple[str, Health]:
    """(boot id, health) from `after_reboot_script`'s output."""
    sections = _sections(output)
    state = sections["state"].strip().splitlines()[-1:] or ["timeout"]
    failed = [line.split()[0] for line in sections["failed"].splitlines() if line.strip()]
    health = Health(
        ok=state[0] == "running" and not failed, state=state[0], failed_units=failed,
        detail=", ".join(failed) or state[0],
    )
    return sections["boot_id"].strip(), health
