"""Read an image definition file: TOML -> Definition -> Variants, with one clear error per bad input."""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from archami.config.matrix import MatrixError, expand
from archami.config.schema import Definition
from archami.config.spec import ImageSpec
from archami.config.variant import Variant
from archami.distro.rules import ALL_RULES, rules_for
from archami.errors import ConfigError


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


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _reason(error: dict[str, object]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(error.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def _semantic_checks(file: str, d: Definition) -> None:
    rules = rules_for(d.distro)
    expected = rules.package_manager
    known = " or ".join(repr(r.package_manager) for r in ALL_RULES)
    if d.package_manager is not None and d.package_manager not in {r.package_manager for r in ALL_RULES}:
        raise ConfigError(file, "package_manager", f"{d.package_manager!r} is not {known}")
    if d.package_manager is not None and d.package_manager != expected:
        raise ConfigError(file, "package_manager", f"{d.distro} uses {expected}, not {d.package_manager}")
    if d.init == "sysvinit":
        raise ConfigError(
            file,
            "init",
            "sysvinit is not supported: Arch Linux no longer packages it and archami's first-boot agent "
            "runs as systemd units; use init = \"systemd\"",
        )
    if d.ssh.password_authentication:
        raise ConfigError(file, "ssh.password_authentication", "public AMIs must be key-only (set it to false)")
    releases = [("release", d.release), *((f"matrix.release[{i}]", r) for i, r in enumerate(d.matrix.release))]
    for key, release in releases:
        problem = rules.release_error(release)
        if problem:
            raise ConfigError(file, key, problem)


def parse_definition(text: str, file: str = "<string>") -> Definition:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(file, _key(tuple(first["loc"])), _reason(dict(first))) from None
    _semantic_checks(file, definition)
    return definition


def _relative_to(definition: Definition, directory: Path) -> Definition:
    """Paths in a definition (repository keys) are relative to the definition file, not to where archami runs."""
    def located(key: str | None) -> str | None:
        return key if key is None or Path(key).is_absolute() else os.path.normpath(directory.absolute() / key)

    repositories = [r.model_copy(update={"key": located(r.key)}) for r in definition.repositories]
    return definition.model_copy(update={"repositories": repositories})


def load_definition(path: Path | str) -> LoadedDefinition:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    definition = _relative_to(parse_definition(text, str(path)), path.parent)
    try:
        specs = expand(definition)
    except MatrixError as exc:
        raise ConfigError(str(path), exc.key, str(exc)) from None
    return LoadedDefinition(path, definition, specs, hashlib.sha256(data).hexdigest())
