"""Read an image definition file: TOML -> Definition -> Variants, with one clear error per bad input."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from archami.config.matrix import MatrixError, expand
from archami.config.schema import PACKAGE_MANAGER_OF, Definition
from archami.config.variant import Variant
from archami.errors import ConfigError


@dataclass(frozen=True)
class LoadedDefinition:
    path: Path
    definition: Definition
    variants: list[Variant]
    sha256: str  # of the file's bytes: the manifest records which definition built an image


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
    expected = PACKAGE_MANAGER_OF[d.distro]
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
    if d.distro == "arch" and d.release != "rolling":
        raise ConfigError(file, "release", "Arch Linux has one release: 'rolling'")


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
    definition = parse_definition(text, str(path))
    try:
        variants = expand(definition)
    except MatrixError as exc:
        raise ConfigError(str(path), exc.key, str(exc)) from None
    return LoadedDefinition(path, definition, variants, hashlib.sha256(data).hexdigest())
