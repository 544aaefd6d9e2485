"""Line numbers for keys of a TOML document (tomllib gives none).

A light scanner walks text that tomllib has already accepted and records, for every key path it sees, the
line where it starts: table headers (`[disk]`, `[[files]]`, counting array-of-tables elements), `key = value`
lines (dotted keys too), the elements of arrays (`add = ["a", "b"]` gives ("packages", "add", 1)) and the
keys of inline tables (`exclude = [{ flavour = "gpu" }]`). It understands strings of all four kinds and
comments, so brackets inside them do not confuse it.

How exact: the line given is where the key (or the array element) *starts*; a value spread over several
lines (a multi-line string, a long array) is reported at its first line, and a problem with a value that has
no key of its own (a default, a rule across several keys) at the nearest enclosing table or key that the
document has. A key the document does not contain at all (a required key that is missing) gets the line of
the table that should hold it, or none for the top level.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

Path = tuple[str | int, ...]
_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = set(",]}\n#\r \t")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.newlines = [n for n, c in enumerate(text) if c == "\n"]
        self.lines: dict[Path, int] = {}

    # -- positions -------------------------------------------------------------------------------------

    def line(self, index: int) -> int:
        return bisect.bisect_left(self.newlines, index) + 1

    def record(self, path: Path, index: int) -> None:
        self.lines.setdefault(path, self.line(index))

    def peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def skip_space(self, newlines: bool) -> None:
        while self.i < len(self.text):
            c = self.text[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#":
                end = self.text.find("\n", self.i)
                self.i = len(self.text) if end < 0 else end
            else:
                return

    # -- tokens ----------------------------------------------------------------------------------------

    def string(self) -> str:
        text, start = self.text, self.i
        for quote in ('"""', "'''"):
            if text.startswith(quote, start):
                end = start + 3
                while True:
                    end = text.find(quote, end)
                    if end < 0:
                        self.i = len(text)
                        return text[start + 3 :]
                    if quote == "'''" or not _escaped(text, end):
                        break
                    end += 1
                while text.startswith(quote[0], end + 3) and end + 3 < len(text):  # up to two quotes may close it
                    end += 1
                self.i = end + 3
                return text[start + 3 : end]
        quote = text[start]
        end = start + 1
        while end < len(text) and text[end] != quote:
            end += 2 if quote == '"' and text[end] == "\\" else 1
        self.i = end + 1
        raw = text[start + 1 : end]
        return raw if quote == "'" else _unescape(raw)

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_space(newlines=False)
            c = self.peek()
            if c in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.i
                while self.i < len(self.text) and self.text[self.i] in _BARE:
                    self.i += 1
                parts.append(self.text[start : self.i])
            self.skip_space(newlines=False)
            if self.peek() != ".":
                return parts
            self.i += 1

    def value(self, path: Path) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self.skip_space(newlines=True)
                if self.peek() in ("]", ""):
                    self.i += 1
                    return
                self.record((*path, index), self.i)
                self.value((*path, index))
                self.skip_space(newlines=True)
                if self.peek() == ",":
                    self.i += 1
                    index += 1
        elif c == "{":
            self.i += 1
            while True:
                self.skip_space(newlines=False)
                if self.peek() in ("}", ""):
                    self.i += 1
                    return
                if self.peek() == ",":
                    self.i += 1
                    continue
                start = self.i
                sub = (*path, *self.key())
                self.record(sub, start)
                self.skip_space(newlines=False)
                self.i += 1  # '='
                self.skip_space(newlines=False)
                self.value(sub)
        else:
            while self.i < len(self.text) and self.text[self.i] not in _SCALAR_END:
                self.i += 1

    # -- document --------------------------------------------------------------------------------------

    def scan(self) -> dict[Path, int]:
        current: Path = ()
        arrays: dict[Path, int] = {}  # array-of-tables (resolved path without the index) -> last index
        while True:
            self.skip_space(newlines=True)
            if self.i >= len(self.text):
                return self.lines
            start = self.i
            if self.peek() == "[":
                double = self.peek(2) == "[["
                self.i += 2 if double else 1
                parts = self.key()
                self.i += 2 if double else 1
                resolved: list[str | int] = []
                for n, part in enumerate(parts):
                    resolved.append(part)
                    if tuple(resolved) in arrays and (n < len(parts) - 1 or not double):
                        resolved.append(arrays[tuple(resolved)])
                if double:
                    base = tuple(resolved)
                    arrays[base] = arrays.get(base, -1) + 1  # sub-arrays of a new element get paths of their own
                    self.record(base, start)
                    resolved.append(arrays[base])
                current = tuple(resolved)
                self.record(current, start)
                continue
            path = (*current, *self.key())
            self.record(path, start)
            self.skip_space(newlines=False)
            self.i += 1  # '='
            self.skip_space(newlines=False)
            self.value(path)


def _escaped(text: str, index: int) -> bool:
    """Whether the character at `index` is preceded by an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _unescape(raw: str) -> str:
    """Enough of TOML's basic-string escapes to compare quoted keys."""
    if "\\" not in raw:
        return raw
    try:
        return raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return raw


def key_lines(text: str) -> dict[Path, int]:
    """Key path -> the line (1-based) where it starts, for a document tomllib accepted."""
    try:
        return _Scanner(text).scan()
    except (IndexError, RecursionError):  # never let locating an error become one
        return {}


def line_of(lines: dict[Path, int], loc: Sequence[str | int]) -> int | None:
    """The line of `loc`, or of its nearest enclosing key the document has."""
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
