"""Errors that the CLI reports as one clear line (never a traceback)."""

from __future__ import annotations


class ArchamiError(Exception):
    """A failure the user can act on. The CLI prints its message and exits non-zero."""

    exit_code = 1


class ConfigError(ArchamiError):
    """An image definition is invalid: names the file, the key and the reason."""

    exit_code = 2

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {reason}")


class ToolMissingError(ArchamiError):
    """A host tool is needed and not installed; `archami doctor` says how to get it."""

    exit_code = 3
