"""Secrets found by what files *contain*, not only by their names: private keys in PEM form anywhere they
could land, AWS access key ids and secret keys, API tokens, and shell histories (whatever their name) that
hold them.

Where it looks: the places a person or a build script leaves things (/root, /home, /etc, /opt, /srv,
/usr/local, /var/lib, /var/backups, /tmp, /var/tmp, /boot), regular files up to 1 MiB (keys, credentials
and histories are small; larger files are not read), at most 256 MiB in all (past that, a "not-scanned"
finding says so rather than skipping silently). Package-owned trees (/usr outside /usr/local) are not
scanned: test suites there ship throwaway keys on purpose. A Debian image scans ~1000 files (7.5 MB): the
audit takes ~4 s instead of ~1.2 s.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from archami.artifacts import AuditFinding
from archami.audit.fsview import FsView

SCAN_ROOTS = ("/root", "/home", "/etc", "/opt", "/srv", "/usr/local", "/var/lib", "/var/backups", "/tmp", "/var/tmp",
              "/boot")
FILE_LIMIT = 1 << 20
TOTAL_LIMIT = 256 << 20
BATCH = 256  # files per debugfs process (each dumped whole into a temporary directory first)

PATTERNS: tuple[tuple[str, re.Pattern[bytes], str], ...] = (
    ("private-key", re.compile(rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
     "a private key (PEM)"),
    ("aws-access-key", re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}(?![A-Z0-9])"),
     "an AWS access key id"),
    ("aws-access-key", re.compile(rb"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"),
     "an AWS secret access key"),
    ("secret-token", re.compile(rb"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,}|"
                                rb"xox[abposr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20})"),
     "an API token (GitHub, GitLab or Slack)"),
    ("secret-token", re.compile(rb"(?i)authorization:\s*(?:bearer|token)\s+[A-Za-z0-9._~+/=-]{20,}"),
     "an HTTP bearer token"),
)
# In a history file, a command that set a secret in the environment or on a command line.
HISTORY_SECRET = re.compile(
    rb"(?i)(?:export\s+)?[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY)[A-Z0-9_]*=\S+|--password[= ]\S+"
)
# Files other rules already report by name.
_NAMED_ELSEWHERE = re.compile(r"/etc/ssh/ssh_host_[^/]*|.*/id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?|"
                              r".*/private-keys-v1\.d/[^/]*|.*/secring\.gpg")


def _history(path: str) -> bool:
    return "history" in posixpath.basename(path).lower()


def _candidates(view: FsView) -> tuple[list[str], list[str]]:
    """(files to scan, files skipped for the size budget)."""
    chosen: list[str] = []
    skipped: list[str] = []
    total = 0
    for entry in view.entries():
        if entry.kind != "file" or entry.size == 0 or not entry.path.startswith(tuple(f"{r}/" for r in SCAN_ROOTS)):
            continue
        if _NAMED_ELSEWHERE.fullmatch(entry.path):
            continue
        if entry.size > FILE_LIMIT:
            continue
        if total + entry.size > TOTAL_LIMIT:
            skipped.append(entry.path)
            continue
        total += entry.size
        chosen.append(entry.path)
    return chosen, skipped


def secret_contents(view: FsView) -> Iterator[AuditFinding]:
    chosen, skipped = _candidates(view)
    for start in range(0, len(chosen), BATCH):
        for path, data in view.read_many(chosen[start : start + BATCH], FILE_LIMIT).items():
            for rule, pattern, what in PATTERNS:
                if pattern.search(data):
                    yield AuditFinding(rule=rule, path=path, detail=f"contains {what}")
                    break
            else:
                if _history(path) and HISTORY_SECRET.search(data):
                    yield AuditFinding(rule="secret-in-history", path=path,
                                       detail="a shell history that sets a password or token")
    if skipped:
        yield AuditFinding(rule="not-scanned", path=skipped[0],
                           detail=f"{len(skipped)} file(s) past the {TOTAL_LIMIT >> 20} MiB scanning budget were not "
                                  "searched for secrets")


RULE_IDS = ("private-key", "aws-access-key", "secret-token", "secret-in-history", "not-scanned")
