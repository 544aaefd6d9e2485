"""Argument checks shared by the commands, as Typer callbacks: a bad path or number is refused by the
parser, before any work starts (and before anything is created on disk or in AWS).

    out: Annotated[Path, typer.Option("--out", callback=output_dir)] = Path("out")

Click prints the refusal as a usage error (exit 2) naming the option; with --json it is the JSON error, whose
`file` is the path when a file named on the command line is at fault (FileParameterError).
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path

import typer

from archami.boundedio import ARTIFACT_LIMIT, DEFINITION_LIMIT

PORT_MAX = 65535
# An id that becomes part of file names and AMI names: a release id (YYYY.MM.DD[.N]) or a short label.
_FILE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class FileParameterError(typer.BadParameter):
    """A file or directory named on the command line cannot be used; `file` is its path."""

    def __init__(self, file: Path, message: str) -> None:
        super().__init__(message)
        self.file = str(file)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _regular_file(path: Path, limit: int | None) -> Path:
    try:
        info = path.stat()
    except OSError as exc:
        raise FileParameterError(path, f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileParameterError(path, f"{path} is {_kind(info.st_mode)}, not a regular file")
    if limit is not None and info.st_size > limit:
        raise FileParameterError(path, f"{path} is {info.st_size:,} bytes, more than the {limit:,} allowed")
    if not os.access(path, os.R_OK):
        raise FileParameterError(path, f"{path}: permission denied")
    return path


def existing_file(value: Path | None) -> Path | None:
    """A readable regular file (not a FIFO, device or directory)."""
    return None if value is None else _regular_file(value, None)


def existing_files(values: list[Path] | None) -> list[Path] | None:
    for value in values or []:
        _regular_file(value, ARTIFACT_LIMIT)
    return values


def definition_file(value: Path) -> Path:
    """An image definition: a regular file of at most 1 MiB."""
    return _regular_file(value, DEFINITION_LIMIT)


def existing_dir(value: Path | None) -> Path | None:
    if value is None:
        return None
    if not value.is_dir():
        raise FileParameterError(value, f"{value}: {'not a directory' if value.exists() else 'no such directory'}")
    return value


def existing_file_or_dir(value: Path) -> Path:
    if value.is_dir():
        return value
    return _regular_file(value, None)


def output_dir(value: Path | None) -> Path | None:
    """A directory to write into: an existing directory, or a path that can be created as one."""
    if value is None:
        return None
    if value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} exists and is not a directory")
    ancestor = value.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise typer.BadParameter(f"{value}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"{value}: cannot create it in {ancestor} (permission denied)")
    return value


def output_file(value: Path | None) -> Path | None:
    """A file to write: not a directory, and its directory exists or can be made (no file in the way)."""
    if value is None:
        return None
    if value.is_dir():
        raise typer.BadParameter(f"{value} is a directory, not a file")
    if value.exists() and not value.is_file():
        raise typer.BadParameter(f"{value} exists and is not a regular file")
    ancestor = value.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise typer.BadParameter(f"{value}: {ancestor} is not a directory")
    return value


def port(value: int) -> int:
    if not 0 <= value <= PORT_MAX:
        raise typer.BadParameter(f"{value} is not a TCP port (0-{PORT_MAX}; 0 picks a free one)")
    return value


def positive(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise typer.BadParameter(f"must be at least 1, not {value}")
    return value


def non_negative(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise typer.BadParameter(f"cannot be negative ({value})")
    return value


def seconds(value: float) -> float:
    """A duration in seconds: finite and positive."""
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"must be a positive number of seconds, not {value}")
    return value


def seconds_or_zero(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(f"must be 0 or a positive number of seconds, not {value}")
    return value


def fraction_percent(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise typer.BadParameter(f"must be a percentage from 0 to 100, not {value}")
    return value


def hours(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(f"must be 0 or a positive number of hours, not {value}")
    return value


def file_id(value: str | None) -> str | None:
    """An id that becomes part of file names (a release id): no '/', '..' or leading dot."""
    if value is not None and (not _FILE_ID.fullmatch(value) or ".." in value):
        raise typer.BadParameter(
            f"{value!r} is not an id (letters, digits, '.', '_' and '-', starting with a letter or digit; at most "
            "64): it becomes part of file and AMI names"
        )
    return value
