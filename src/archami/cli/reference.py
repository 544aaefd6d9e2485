"""The definition reference: one row per key of the image definition, read from the pydantic schema.

`archami schema` (table, --json, --markdown, --man), the README's reference section and `docs/archami.1`
are all drawn from `settings()`, so a key added to `config/schema.py` (with its `description=`) appears
everywhere at once and tests/unit/test_reference.py fails until the generated files are refreshed
(`make docs`). Nothing here validates: it only reads the models' fields, types and defaults.

Keys are written as a definition writes them: `kernel.stable` is `stable` in the `[kernel]` table,
`files[].path` is `path` in each `[[files]]` table, `flavours.<name>.kernel` is `kernel` in
`[flavours.NAME]`. A model that appears a second time (a flavour's `ssh`) is one row pointing at the first.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from archami.config import publish as publish_types
from archami.config import types as config_types
from archami.config.reproducible import Reproducible
from archami.config.schema import Definition, Disk, Matrix, Repository
from archami.config.sizes import format_size
from archami.distro.rules import ALL_RULES


@dataclass(frozen=True)
class Setting:
    """One key of the reference. `default` is the value as a definition writes it (TOML), None when unset."""

    key: str
    type: str
    default: str | None
    required: bool
    allowed: tuple[str, ...] | None  # the values a Literal (or a list of them) accepts
    meaning: str
    table: bool = False  # a table (or tables) whose keys follow

    @property
    def default_shown(self) -> str:
        if self.required:
            return "required"
        if self.default is None:
            return "" if self.table else "unset"
        return self.default

    @property
    def default_phrase(self) -> str:
        """"required", "unset", "default X", or "" (a table): how the terminal and the man page say it."""
        shown = self.default_shown
        return f"default {shown}" if self.default is not None and not self.required else shown

    def as_json(self) -> dict[str, object]:
        return {"key": self.key, "type": self.type, "default": self.default, "required": self.required,
                "allowed": list(self.allowed) if self.allowed is not None else None, "meaning": self.meaning}


# What each constrained string type is called (keyed by its validator functions: pydantic moves a field's
# own Annotated metadata into FieldInfo.metadata, and keeps it inside list[...] and X | None).
_NAMED: dict[str, object] = {
    "hostname": config_types.Hostname,
    "package name": config_types.PackageName,
    "kernel module name": config_types.ModuleName,
    "systemd unit name": config_types.UnitName,
    "flavour name": config_types.FlavourRef,
    "release name": config_types.ReleaseName,
    "user name": config_types.UserName,
    "EC2 instance type": config_types.InstanceType,
    "image name": config_types.ImageFamily,
    "text": config_types.Description,
    "absolute path": config_types.ImagePath,
    "link target": config_types.LinkTarget,
    "file path": config_types.LocalPath,
    "octal mode": config_types.FileMode,
    "URL": config_types.MirrorUrl,
    "SigLevel": config_types.SigLevel,
    "kernel argument": config_types.KernelArg,
    "IANA time zone": config_types.Timezone,
    "locale name": config_types.Locale,
    "region": publish_types.Region,
    "account id": publish_types.AccountId,
    "organization ARN": publish_types.OrganizationArn,
    "organizational unit ARN": publish_types.OrganizationalUnitArn,
}
_INLINE = {  # constrained strings declared on the field itself
    "SSM path": (publish_types.PublishSettings, "ssm_prefix"),
    "S3 bucket name": (publish_types.PublishSettings, "bucket"),
    "S3 key prefix": (publish_types.PublishSettings, "bucket_prefix"),
    "KMS key ARN": (publish_types.PublishSettings, "kms_key_arn"),
}
# Integers that definitions write as sizes ("2GiB"): the schema parses them in a field validator.
SIZE_FIELDS: set[tuple[type[BaseModel], str]] = {(Disk, "size"), (Disk, "esp_size")}
# Empty defaults that stand for another setting's value.
DEFAULT_SHOWN: dict[tuple[type[BaseModel], str], str] = {
    (Matrix, "release"): "[release]", (Matrix, "architecture"): "[architecture]",
}
# How the key of a table of tables is written (flavours.<name>, architectures.<arch>).
PLACEHOLDERS = {"flavours": "<name>", "architectures": "<arch>"}


def _validators(metadata: typing.Iterable[object]) -> tuple[object, ...]:
    return tuple(getattr(m, "func", None) for m in metadata if getattr(m, "func", None) is not None)


def _annotated_args(annotation: object) -> list[object]:
    """The Annotated[...] types inside `annotation` (itself, its X | None, ...)."""
    if hasattr(annotation, "__metadata__"):
        return [annotation]
    return [a for arg in get_args(annotation) for a in _annotated_args(arg)]


def _name_table() -> dict[tuple[object, ...], str]:
    names = {_validators(getattr(alias, "__metadata__", ())): name for name, alias in _NAMED.items()}
    names[_validators(getattr(config_types.FlavourName, "__metadata__", ()))] = "flavour name"
    for name, (model, field) in _INLINE.items():
        info = model.model_fields[field]
        for found in [*_annotated_args(info.annotation), info]:
            key = _validators(getattr(found, "__metadata__", None) or getattr(found, "metadata", []))
            if key:
                names[key] = name
    return names


_NAMES = _name_table()


def _quoted(values: typing.Iterable[object]) -> str:
    return " | ".join(json.dumps(v) for v in values)


# Strings checked by a field validator rather than by their type.
TYPE_SHOWN: dict[tuple[type[BaseModel], str], str] = {
    (Repository, "name"): "repository name",
    (Reproducible, "snapshot"): "URL",
    (Definition, "package_manager"): _quoted(r.package_manager for r in ALL_RULES),
}


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _without_none(annotation: object) -> object:
    """`X | None` -> X (the default column says "unset")."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        if len(kept) == 1:
            return kept[0]
        return typing.Union[tuple(kept)]  # noqa: UP007  (built from a tuple at run time)
    return annotation


def type_name(annotation: object, metadata: typing.Iterable[object] = ()) -> tuple[str, tuple[str, ...] | None]:
    """The type as the reference writes it, and the allowed values when it is a Literal (or a list of one)."""
    named = _NAMES.get(_validators(metadata)) if metadata else None
    if named is not None:
        return named, None
    annotation = _without_none(annotation)
    if hasattr(annotation, "__metadata__"):
        return type_name(get_args(annotation)[0], annotation.__metadata__)
    origin = get_origin(annotation)
    if origin is Literal:
        values = get_args(annotation)
        return _quoted(values), tuple(map(str, values))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a)[0] for a in get_args(annotation)), None
    if origin is list:
        inner, allowed = type_name(get_args(annotation)[0])
        return (f"list of {inner}" if allowed else f"list of {inner}s"), allowed
    if origin is dict:
        key, value = get_args(annotation)
        by = "" if key is str else f" by {type_name(key)[0]}"
        return f"table of {type_name(value)[0]}s{by}", None
    simple = {bool: "boolean", int: "integer", str: "string", Path: "path", date: "date"}
    if isinstance(annotation, type) and annotation in simple:
        return simple[annotation], None
    raise TypeError(f"the reference has no name for the type {annotation!r}: add it to cli/reference.py")


def toml_value(value: object, *, size: bool = False) -> str:
    """A default as a definition writes it: "UTC", true, ["ed25519"], "2GiB"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return json.dumps(format_size(value)) if size else str(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TOML form for the default {value!r}")


def _meaning(info: FieldInfo, model: type[BaseModel] | None = None) -> str:
    text = info.description or (model.__doc__ if model is not None and model.__doc__ else "")
    return " ".join(text.split())


def _leaf(model: type[BaseModel], name: str, key: str, info: FieldInfo) -> Setting:
    kind, allowed = type_name(info.annotation, info.metadata)
    kind = TYPE_SHOWN.get((model, name), kind)
    size = (model, name) in SIZE_FIELDS
    if size:
        kind = "size"
    default: str | None = None
    if not info.is_required():
        value = info.get_default(call_default_factory=True)
        default = DEFAULT_SHOWN.get((model, name)) or (None if value is None else toml_value(value, size=size))
    return Setting(key, kind, default, info.is_required(), allowed, _meaning(info))


def settings(model: type[BaseModel] = Definition) -> list[Setting]:
    """Every key of `model` (the whole definition by default), tables before their keys, in schema order."""
    rows: list[Setting] = []
    _walk(model, "", rows, {})
    return rows


def _walk(model: type[BaseModel], prefix: str, rows: list[Setting], seen: dict[type[BaseModel], str]) -> None:
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = _without_none(info.annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        required = info.is_required()
        if _is_model(annotation):
            sub = typing.cast(type[BaseModel], annotation)
            if sub in seen:  # e.g. flavours.<name>.ssh: the keys of [ssh], listed once
                rows.append(Setting(key, f"table (the keys of {seen[sub]})", None, required, None, _meaning(info),
                                    table=True))
                continue
            seen[sub] = key
            rows.append(Setting(key, "table", None, required, None, _meaning(info, sub), table=True))
            _walk(sub, f"{key}.", rows, seen)
        elif origin is list and _is_model(args[0]):
            rows.append(Setting(key, "array of tables", "[]" if not required else None, required, None,
                                _meaning(info, args[0]), table=True))
            _walk(args[0], f"{key}[].", rows, seen)
        elif origin is dict and _is_model(args[1]):
            placeholder = PLACEHOLDERS.get(name, "<key>")
            by, allowed = type_name(args[0])
            rows.append(Setting(key, f"tables by {by}", None, required, allowed, _meaning(info), table=True))
            entry = " ".join((args[1].__doc__ or "").split())
            rows.append(Setting(f"{key}.{placeholder}", "table", None, False, None, entry, table=True))
            _walk(args[1], f"{key}.{placeholder}.", rows, seen)
        else:
            rows.append(_leaf(model, name, key, info))


def as_json(rows: list[Setting]) -> dict[str, Any]:
    return {"settings": [row.as_json() for row in rows]}
