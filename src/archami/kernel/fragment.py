"""Kernel configuration fragments and `.config` files: reading them, and checking a fragment held.

A fragment is what `scripts/kconfig/merge_config.sh` merges: `CONFIG_X=value` lines and
`# CONFIG_X is not set` lines. archami's own fragment groups its options under `## name: reason` headers,
which kconfig and merge_config.sh read as comments.

After `make olddefconfig` a requested option can silently lose: its dependencies are off, something
selects it, or the kernel no longer has it. `dropped` finds every such option, so a build stops instead
of shipping a kernel without, say, xen-blkfront.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from archami.errors import ArchamiError

NOT_SET = "n"  # how an option that is "not set" (or absent) is represented here

_ASSIGNMENT = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_GROUP = re.compile(r"^## ([a-z0-9-]+): (.+)$")


class FragmentError(ArchamiError):
    """A fragment cannot be read, or the kernel dropped options it sets."""


@dataclass
class Group:
    name: str
    reason: str
    options: dict[str, str] = field(default_factory=dict)  # CONFIG_X -> value ("n" when not set)


@dataclass(frozen=True)
class Dropped:
    """An option the fragment sets that the final configuration does not have."""

    option: str
    wanted: str
    got: str  # "n" when the option is not set or absent

    def describe(self) -> str:
        def shown(value: str) -> str:
            return "not set" if value == NOT_SET else value

        return f"{self.option} (wanted {shown(self.wanted)}, got {shown(self.got)})"


def default_fragment_path() -> Path:
    """archami's EC2 fragment, shipped as package data."""
    return Path(str(resources.files("archami.kernel").joinpath("ec2.config")))


def parse_config(text: str) -> dict[str, str]:
    """A `.config` or fragment as {CONFIG_X: value}; `# CONFIG_X is not set` gives "n".

    Values keep kconfig's spelling (strings keep their quotes) so they compare exactly.
    """
    options: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if match := _ASSIGNMENT.match(line):
            options[match.group(1)] = match.group(2)
        elif match := _UNSET.match(line):
            options[match.group(1)] = NOT_SET
    return options


def parse_groups(text: str, source: str = "fragment") -> list[Group]:
    """The fragment's groups in file order. Options before the first header are refused: every option
    needs the one-line reason its group gives; an option set twice is refused too."""
    groups: list[Group] = []
    seen: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if match := _GROUP.match(line):
            groups.append(Group(match.group(1), match.group(2)))
            continue
        options = parse_config(line)
        if not options:
            continue
        if not groups:
            raise FragmentError(f"{source}:{number}: option before the first '## group: reason' header")
        for option, value in options.items():
            if option in seen:
                raise FragmentError(f"{source}:{number}: {option} is already set in group {seen[option]}")
            seen[option] = groups[-1].name
            groups[-1].options[option] = value
    if not groups:
        raise FragmentError(f"{source}: no '## group: reason' headers and no options")
    return groups


def fragment_options(groups: list[Group]) -> dict[str, str]:
    return {option: value for group in groups for option, value in group.options.items()}


def dropped(requested: dict[str, str], final: dict[str, str]) -> list[Dropped]:
    """Requested options whose value the final configuration does not have, in request order."""
    missing = []
    for option, wanted in requested.items():
        got = final.get(option, NOT_SET)
        if got != wanted:
            missing.append(Dropped(option, wanted, got))
    return missing


def require_held(requested: dict[str, str], final: dict[str, str], source: str) -> None:
    """Raise FragmentError naming every option of the fragment the kernel dropped or changed."""
    missing = dropped(requested, final)
    if missing:
        listed = "; ".join(d.describe() for d in missing)
        raise FragmentError(
            f"the kernel dropped {len(missing)} option(s) of {source} after olddefconfig "
            f"(unmet dependencies, selected by another option, or unknown to this kernel): {listed}"
        )


def group_of(groups: list[Group]) -> dict[str, str]:
    """CONFIG_X -> name of the group that sets it."""
    return {option: group.name for group in groups for option in group.options}
