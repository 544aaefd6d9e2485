"""The publish-settings flags shared by `archami publish` and `archami release`, declared once.

`@publish_flags` adds one option per overridable setting (config/publish.py `FLAG_OF`; the help text is the
setting's own description) to a command, and hands the command the flags that were given as `overrides`
(setting key -> value, for `apply_overrides`), so both commands take the same flags with the same meaning.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic.fields import FieldInfo

from archami.config.publish import FLAG_OF, PublishSettings, Share, parse_regions
from archami.errors import ArchamiError

R = TypeVar("R")
PANEL = "Publish settings (override the definition's \\[publish] table)"  # "\\[": not Rich markup


def _tags(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise ArchamiError(f"--tag {value!r}: give KEY=VALUE")
        tags[key] = text
    return tags


@dataclass(frozen=True)
class _Flag:
    key: str  # the setting it overrides (a key of FLAG_OF)
    kind: Any  # what the option parses (its Typer type)
    convert: Callable[[Any], object] = lambda value: value
    metavar: str | None = None

    @property
    def parameter(self) -> str:
        return self.key.replace(".", "_")

    def field(self) -> FieldInfo:
        """The setting's declaration, whose description is the flag's help (share.* live in Share)."""
        model: type[PublishSettings] | type[Share] = Share if self.key.startswith("share.") else PublishSettings
        return model.model_fields[self.key.split(".")[-1]]

    def option(self) -> inspect.Parameter:
        field = self.field()
        default = field.get_default(call_default_factory=True)
        shown = f" \\[default: {default}]" if default not in (None, [], {}, "") else ""
        help_text = f"{field.description}{shown}"
        if self.kind == list[str] | None:
            help_text += " Repeat for more."
        declaration = typer.Option(
            FLAG_OF[self.key], help=help_text, metavar=self.metavar, rich_help_panel=PANEL, show_default=False
        )
        return inspect.Parameter(
            self.parameter, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[self.kind, declaration]
        )


FLAGS = [
    _Flag("regions", str | None, parse_regions, "REGION,...|all"),
    _Flag("source_region", str | None, metavar="REGION"),
    _Flag("public", bool | None),
    _Flag("share.accounts", list[str] | None, metavar="ACCOUNT"),
    _Flag("share.organizations", list[str] | None, metavar="ARN"),
    _Flag("share.organizational_units", list[str] | None, metavar="ARN"),
    _Flag("deprecate", str | None, metavar="DAYS|DATE|never"),
    _Flag("ssm_prefix", str | None, metavar="/PATH"),
    _Flag("method", str | None, metavar="ebs-direct|s3-import"),
    _Flag("bucket", str | None, metavar="BUCKET"),
    _Flag("bucket_prefix", str | None, metavar="PREFIX"),
    _Flag("ec2_certificate", Path | None, metavar="PEM"),
    _Flag("signing_key", Path | None, metavar="PEM"),
    _Flag("encrypted", bool | None),
    _Flag("kms_key_arn", str | None, metavar="ARN"),
    _Flag("tags", list[str] | None, _tags, "KEY=VALUE"),
]
assert sorted(f.key for f in FLAGS) == sorted(FLAG_OF), "every overridable setting has exactly one flag"


def publish_flags(command: Callable[..., R]) -> Callable[..., R]:
    """Give `command` the publish-settings flags; it receives them as `overrides: dict[str, object]`."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "overrides"]
    added = [flag.option() for flag in FLAGS]

    @functools.wraps(command)
    def with_overrides(**kwargs: Any) -> R:
        overrides: dict[str, object] = {}
        for flag in FLAGS:
            value = kwargs.pop(flag.parameter)
            if value is not None and value != []:
                overrides[flag.key] = flag.convert(value)
        return command(**kwargs, overrides=overrides)

    parameters = [*kept, *added]
    # Typer reads the options from the signature and the annotations: both must list the added flags.
    with_overrides.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_overrides.__annotations__ = {p.name: p.annotation for p in parameters}
    del with_overrides.__wrapped__  # or inspect and get_type_hints would read the undecorated command
    return with_overrides
