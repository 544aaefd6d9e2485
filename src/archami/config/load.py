"""Read an image definition file: TOML -> Definition -> ImageSpecs, with every problem of the file reported
together (file, line, key, reason), in file order.

Reading is bounded (config/../boundedio.py): a FIFO, a device or a file over 1 MiB is refused before it is
read. A UTF-8 byte-order mark at the start is accepted (and ignored): editors on Windows write one.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from archami.boundedio import DEFINITION_LIMIT, InputFileError, InputTimeout, read_bounded, time_limit
from archami.config.checks import ami_name_problems, definition_problems
from archami.config.locate import key_lines, line_of
from archami.config.matrix import expand_checked
from archami.config.problems import DefinitionError, Problem, problems_of
from archami.config.schema import Definition
from archami.config.spec import ImageSpec
from archami.config.variant import Variant
from archami.distro.rules import DistroRules, rules_for
from archami.errors import ArchamiError, ConfigError

BOM = "\ufeff"


@dataclass(frozen=True)
class LoadedDefinition:
    path: Path
    definition: Definition
    specs: list[ImageSpec]  # one per variant of the matrix, in matrix order: what the build stage consumes
    sha256: str  # of the file's bytes: the manifest records which definition built an image

    @property
    def variants(self) -> list[Variant]:
        return [spec.variant for spec in self.specs]

    def spec(self, variant: Variant | str) -> ImageSpec:
        """The resolved image spec of one of this definition's variants (by Variant or id)."""
        wanted = variant if isinstance(variant, str) else variant.id
        for spec in self.specs:
            if spec.variant.id == wanted:
                return spec
        raise ConfigError(str(self.path), "--variant", f"no variant {wanted!r} in this definition")


def _toml_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column \d+\)", message)
    return Problem("", f"not valid TOML: {message}", int(found.group(1)) if found else None)


def _rules(raw: dict[str, object]) -> DistroRules | None:
    distro = raw.get("distro")
    try:
        return rules_for(distro) if isinstance(distro, str) else None
    except ArchamiError:
        return None


PARSE_SECONDS = 10.0  # a real definition takes milliseconds; a hostile one can take minutes (tomllib)


def _parse(text: str, file: str, *, with_matrix: bool = True, directory: Path | None = None
           ) -> tuple[Definition, list[ImageSpec]]:
    try:
        with time_limit(PARSE_SECONDS, "definition"):
            return _parse_unbounded(text, file, with_matrix=with_matrix, directory=directory)
    except InputTimeout as exc:
        raise DefinitionError(file, [Problem("", str(exc))]) from None


def _parse_unbounded(text: str, file: str, *, with_matrix: bool, directory: Path | None
                     ) -> tuple[Definition, list[ImageSpec]]:
    text = text.removeprefix(BOM)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(file, [_toml_problem(exc)]) from None
    except RecursionError:
        raise DefinitionError(file, [Problem("", "not valid TOML: arrays or tables nested too deeply")]) from None
    except ValueError as exc:  # Python's limit on digits in an integer (4300)
        raise DefinitionError(file, [Problem("", f"not valid TOML: {exc}")]) from None
    lines = key_lines(text)
    try:
        definition = Definition.model_validate(raw, context={"rules": _rules(raw)})
    except ValidationError as exc:
        raise DefinitionError(file, problems_of(exc.errors(), raw, lines, Definition)) from None
    if directory is not None:
        definition = _relative_to(definition, directory)
    specs, matrix = expand_checked(definition) if with_matrix else ([], [])
    found = [*definition_problems(definition), *matrix]
    found += ami_name_problems(definition, [s.variant.id for s in specs])
    if found:
        raise DefinitionError(file, [Problem(key, reason, line_of(lines, _loc(key))) for key, reason in found])
    return definition, specs


def _loc(key: str) -> tuple[str | int, ...]:
    """'matrix.exclude[2].flavour' -> ('matrix', 'exclude', 2, 'flavour')."""
    parts: list[str | int] = []
    for piece in key.split("."):
        name, *indices = piece.split("[")
        if name:
            parts.append(name)
        parts += [int(i.rstrip("]")) for i in indices if i.rstrip("]").isdigit()]
    return tuple(parts)


def parse_definition(text: str, file: str = "<string>") -> Definition:
    """The definition in `text`, checked table by table and across tables; the matrix is checked when it is
    expanded (`expand`, or `load_definition`, which reports the matrix's problems with the rest)."""
    return _parse(text, file, with_matrix=False)[0]


def parse_and_expand(text: str, file: str = "<string>") -> tuple[Definition, list[ImageSpec]]:
    """What load_definition does with a file's text: the definition and its resolved specs, every problem of
    the schema, the cross-table rules and the matrix reported together."""
    return _parse(text, file)


def _relative_to(definition: Definition, directory: Path) -> Definition:
    """Paths in a definition (repository keys) are relative to the definition file, not to where archami runs."""
    def located(key: str | None) -> str | None:
        return key if key is None or Path(key).is_absolute() else os.path.normpath(directory.absolute() / key)

    repositories = [r.model_copy(update={"key": located(r.key)}) for r in definition.repositories]
    return definition.model_copy(update={"repositories": repositories})


def load_definition(path: Path | str) -> LoadedDefinition:
    path = Path(path)
    try:
        data = read_bounded(path, DEFINITION_LIMIT, "definition")
    except InputFileError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise ConfigError(str(path), "", reason.replace("cannot read the definition", "cannot read")) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DefinitionError(str(path), [Problem("", f"not UTF-8 text (byte {exc.start})", line)]) from None
    definition, specs = _parse(text, str(path), directory=path.parent)
    return LoadedDefinition(path, definition, specs, hashlib.sha256(data).hexdigest())
