"""sshd's effective settings read from an image's files, as sshd itself would read them.

Written by hand because no library parses sshd_config; the rules that matter here are sshd's own:
keywords are case-insensitive, the FIRST value obtained wins, `Include` is expanded in place (globs
sorted, relative paths under /etc/ssh), and settings inside `Match` blocks apply only to some connections.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass, field

from archami.audit.fsview import FsView, read_followed, resolve

SSHD_CONFIG = "/etc/ssh/sshd_config"
MAX_INCLUDE_DEPTH = 16
_KEYWORD = re.compile(r"^([A-Za-z]+)(?:\s*=\s*|\s+)(.*)$")  # "Keyword value" or "Keyword=value"
# OpenSSH's compiled-in defaults for what the audit looks at.
DEFAULTS = {"passwordauthentication": "yes", "permitemptypasswords": "no", "kbdinteractiveauthentication": "yes"}


@dataclass
class SshdConfig:
    global_settings: dict[str, tuple[str, str]] = field(default_factory=dict)  # keyword -> (value, file)
    match_settings: list[tuple[str, str, str]] = field(default_factory=list)  # (keyword, value, file)

    def effective(self, keyword: str) -> tuple[str, str]:
        """(value, where it came from) for connections no Match block applies to."""
        keyword = keyword.lower()
        return self.global_settings.get(keyword, (DEFAULTS.get(keyword, ""), "OpenSSH default"))


def _glob(view: FsView, pattern: str) -> list[str]:
    directory, name = posixpath.split(pattern)
    directory = resolve(view, directory)
    names = [
        posixpath.basename(e.path) for e in view.entries()
        if posixpath.dirname(e.path) == directory and fnmatch.fnmatchcase(posixpath.basename(e.path), name)
    ]
    return [posixpath.join(directory, n) for n in sorted(names)]


def parse(view: FsView, path: str = SSHD_CONFIG) -> SshdConfig | None:
    """sshd's view of its configuration, or None when the tree has no sshd_config."""
    if read_followed(view, path) is None:
        return None
    config = SshdConfig()
    _read(view, path, config, in_match=False, depth=0)
    return config


def _read(view: FsView, path: str, config: SshdConfig, in_match: bool, depth: int) -> bool:
    """Read one file into `config`; returns whether a Match block is open at its end (it stays open)."""
    data = read_followed(view, path)
    if data is None or depth > MAX_INCLUDE_DEPTH:
        return in_match
    for raw in data.decode(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match is None:
            continue
        try:
            args = shlex.split(match.group(2), comments=True)
        except ValueError:
            continue
        keyword = match.group(1).lower()
        if keyword == "include":
            for pattern in args:
                full = pattern if pattern.startswith("/") else posixpath.join("/etc/ssh", pattern)
                for included in _glob(view, full):
                    in_match = _read(view, included, config, in_match, depth + 1)
            continue
        if keyword == "match":
            in_match = not (len(args) == 1 and args[0].lower() == "all")
            continue
        value = " ".join(args).lower()
        if in_match:
            config.match_settings.append((keyword, value, path))
        elif keyword not in config.global_settings:
            config.global_settings[keyword] = (value, path)
    return in_match
