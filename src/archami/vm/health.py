"""Boot health from what a boot printed: the serial console and the guest's journal, scanned the way
CoreOS's kola scans every test machine's console (panics, oopses, warnings, emergency shells), plus systemd's
own words for jobs that timed out, dependencies that failed and units that did not start.

Pure functions: text in, `CheckResult`s out; every check has recorded outputs that trip it and pass it
(tests/unit/boot_health/). Each check is one named result, so a report says which kind of trouble a boot had.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archami.artifacts import CheckResult

SHOWN = 3  # findings quoted per check; the rest are counted
MAX_LINE = 200

# CSI sequences (colours, cursor moves: ESC [ ... letter), OSC sequences (ESC ] ... BEL) and the rest of the
# control characters a serial console carries (systemd's coloured status, GRUB's menu).
_ESCAPES = re.compile(
    r"\x1b\[[0-9;:?!]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]"
)
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s+")  # the kernel's '[   41.746661] '
# journalctl -o short-monotonic: '[   42.784924] host ident[pid]: '
_JOURNAL_PREFIX = re.compile(r"^\[\s*\d+\.\d+\]\s+\S+ \S+?(?:\[\d+\])?: ")


@dataclass(frozen=True)
class TextCheck:
    name: str
    pattern: re.Pattern[str]


def _check(name: str, *alternatives: str) -> TextCheck:
    return TextCheck(name, re.compile("|".join(f"(?:{a})" for a in alternatives)))


TEXT_CHECKS: tuple[TextCheck, ...] = (
    _check("no kernel panic", r"Kernel panic - not syncing"),
    _check("no kernel oops", r"\bOops: "),
    _check("no kernel BUG", r"\bBUG: ", r"kernel BUG at "),
    _check("no kernel WARNING", r"\bWARNING: CPU: \d+ PID: \d+"),
    _check("no segfaults or core dumps", r"\bsegfault at [0-9a-f]+", r"status=11/SEGV", r"\bSIGSEGV\b",
           r"dumped core", r"code=dumped"),
    _check("no emergency or rescue mode", r"You are in (?:emergency|rescue) mode",
           r"Entering (?:emergency|rescue) mode",
           r"Starting (?:emergency|rescue)\.service", r"Reached target (?:emergency|rescue)\.target",
           r"Starting Emergency Shell", r"Dropping to a shell", r"Give root password for maintenance"),
    _check("no timed-out jobs", r"Timed out waiting for device", r"Job \S+ timed out", r"/start timed out",
           r"\boperation timed out\b", r"result 'timeout'", r"Timed out starting "),
    _check("no failed dependencies", r"Dependency failed for "),
    _check("no failed starts", r"Failed to (?:start|mount|activate swap) ", r"\[FAILED\]"),
    # A generator that fails leaves the units it should have made missing, silently: systemd carries on. (Trixie's
    # systemd-ssh-generator did on every boot without AF_VSOCK, which is why archami's images mask it.) systemd's
    # words for a generator's end: exec-util's wait_for_terminate_and_check, with the generator's path.
    _check("no failed generators", r"/(?:system|user)-generators/\S+ (?:failed with exit status|terminated by signal"
           r"|failed due to unknown reason)"),
    _check("no ordering cycles", r"Ordering cycle found", r"Job \S+ deleted to break ordering cycle"),
    _check("no OOM kills", r"invoked oom-killer", r"Out of memory: Killed process"),
)


def clean_lines(text: str) -> list[str]:
    """Readable lines of a console or journal: escape sequences and carriage returns gone, prefixes kept."""
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _ESCAPES.sub("", raw).strip()
        if line:
            lines.append(line)
    return lines


def message(line: str, source: str) -> str:
    """A line without its timestamp (and, from the journal, host and sender), shortened for a report."""
    text = (_JOURNAL_PREFIX if source == "journal" else _TIMESTAMP).sub("", line)
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def scan(sources: dict[str, str]) -> list[CheckResult]:
    """Every TEXT_CHECK over every source ('console' -> serial log text, 'journal' -> journalctl output).

    A message found in several sources is quoted once per source: the console shows what a user at the
    instance's console would see, the journal the whole text (a quiet kernel prints warnings only there).
    """
    cleaned = {source: clean_lines(text) for source, text in sources.items()}
    results = []
    for check in TEXT_CHECKS:
        findings: list[str] = []
        for source, lines in cleaned.items():
            for line in lines:
                if check.pattern.search(line):
                    finding = f"{source}: {message(line, source)}"
                    if finding not in findings:
                        findings.append(finding)
        results.append(_result(check.name, findings, f"none in {' or '.join(cleaned) or 'nothing'}"))
    return results


def _result(name: str, findings: list[str], clean: str) -> CheckResult:
    if not findings:
        return CheckResult(name=name, ok=True, detail=clean)
    shown = findings[:SHOWN]
    more = f" (+{len(findings) - SHOWN} more)" if len(findings) > SHOWN else ""
    return CheckResult(name=name, ok=False, detail=" | ".join(shown) + more)


def check_system_running(output: str) -> CheckResult:
    """`systemctl is-system-running` after waiting for the boot to end: 'running' and nothing else
    (degraded: a unit failed; starting: the boot never finished within the wait)."""
    state = output.strip().splitlines()[-1].strip() if output.strip() else "no answer"
    hint = {"degraded": " (a unit failed)", "starting": " (the boot did not finish in time)"}.get(state, "")
    return CheckResult(name="boot finished, system running", ok=state == "running", detail=state + hint)
