"""Problems of a definition file: each with its key, line and reason, all reported together in file order.

`DefinitionError` is a ConfigError (file, key and reason are the first problem's, so callers that show one
error keep working) that carries every problem; the CLI prints one line per problem.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from archami.config.locate import line_of
from archami.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    key: str
    reason: str
    line: int | None = None

    def where(self, file: str) -> str:
        place = f"{file}:{self.line}" if self.line else file
        return f"{place}: {self.key}" if self.key else place


class DefinitionError(ConfigError):
    """Every problem of one definition file, in file order."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        assert problems
        self.problems = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
        first = self.problems[0]
        super().__init__(file, first.key, first.reason)
        self.line = first.line

    def lines(self) -> list[str]:
        return [f"{p.where(self.file)}: {p.reason}" for p in self.problems]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def key_text(loc: Iterable[str | int]) -> str:
    """('files', 0, 'path') -> 'files[0].path'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def clean_loc(loc: Sequence[str | int], raw: object) -> Loc:
    """The part of a pydantic error location that is a path in the document (pydantic adds the names of
    validators and union members, and '[key]' for a bad dictionary key)."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]  # type: ignore[index]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_tag(part):
            out.append(part)  # a key the document does not have (missing, or unknown below a known table)
            node = None
    return tuple(out)


def _is_tag(part: str) -> bool:
    return "[" in part or part in ("str", "int", "bool", "list", "dict", "float")


# -- the schema as a tree of keys (for "did you mean") ---------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The model types an annotation can hold (through Optional, list and dict)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    if origin in (list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    if origin is dict:
        return _unwrap(typing.get_args(annotation)[1])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that holds the keys at `loc` (a table path), or None."""
    current: type[BaseModel] | None = model
    pending_dict = False
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        if pending_dict:
            pending_dict = False
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        inner = _unwrap(field.annotation)
        current = inner[0] if inner else None
        pending_dict = typing.get_origin(field.annotation) is dict
    return current


@functools.cache
def all_keys(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """Every key name of the schema -> its dotted path (first occurrence), for 'it belongs in ...'."""
    found: dict[str, str] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        found.setdefault(name, path)
        for inner in _unwrap(field.annotation):
            if inner is not model and typing.get_origin(field.annotation) is not dict:
                for key, where in all_keys(inner, f"{path}.").items():
                    found.setdefault(key, where)
    return found


def unknown_key_reason(model: type[BaseModel], loc: Loc) -> str:
    key = str(loc[-1])
    table = model_at(model, loc[:-1])
    valid = list(table.model_fields) if table is not None else []
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    elsewhere = all_keys(model).get(key)
    if elsewhere and elsewhere != key_text(loc):
        return f"unknown key {key!r} here (did you mean {elsewhere!r}?)"
    shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
    return f"unknown key {key!r}" + (f" (valid keys: {shown})" if valid else "")


# -- pydantic errors in words ----------------------------------------------------------------------------

_TOML_TYPES = {bool: "a boolean", int: "an integer", float: "a decimal number", str: "a string", list: "a list",
               dict: "a table"}


def _kind(value: object) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


def reason_of(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> str:
    kind = error.get("type")
    value = error.get("input")
    if kind == "extra_forbidden":
        return unknown_key_reason(model, loc)
    if kind == "missing":
        return "required key is missing"
    if kind == "bool_type":
        return f"must be true or false (a TOML boolean, without quotes), not {_kind(value)} {value!r}"[:200]
    if kind == "string_type":
        return f"must be a string (in quotes), not {_kind(value)}"
    if kind in ("int_type", "int_parsing"):
        return f"must be an integer, not {_kind(value)}"
    if kind == "list_type":
        return f"must be a valid list (e.g. [\"a\", \"b\"]), not {_kind(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a table, not {_kind(value)}"
    if kind == "too_short":
        return "must list at least one value"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        shown = repr(value)[:60] if isinstance(value, str | int | float) else _kind(value)
        return f"must be {expected}, not {shown}" if expected else str(error.get("msg"))
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


MAX_PROBLEMS = 100  # a file with more problems is probably not a definition: the rest are counted


def problems_of(errors: list[ErrorDetails], raw: object, lines: dict[Loc, int],
                model: type[BaseModel]) -> list[Problem]:
    out: list[Problem] = []
    for error in errors[:MAX_PROBLEMS]:
        loc = clean_loc(tuple(error["loc"]), raw)
        out.append(Problem(key_text(loc), reason_of(error, model, loc), line_of(lines, loc)))
    if len(errors) > MAX_PROBLEMS:
        out.append(Problem("", f"... and {len(errors) - MAX_PROBLEMS} more problem(s) not shown"))
    return list(dict.fromkeys(out))
