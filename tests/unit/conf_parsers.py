"""Small readers of the configuration files archami writes, as the real programs read them: a written file
must parse back to exactly the values that went in (tests/unit/test_writers_roundtrip.py)."""

from __future__ import annotations

import json
import math
import shlex


def pacman_conf(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """pacman.conf as pacman's parser reads it (conf.c): '#' starts a comment anywhere on a line, lines are
    stripped, '[name]' opens a section, other lines are 'Key = value' or a bare 'Key'."""
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.split("\n"):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], []))
            continue
        key, _, value = line.partition("=")
        assert sections, f"directive outside a section: {line!r}"
        sections[-1][1].append((key.strip(), value.strip()))
    return sections


def fstab(text: str) -> list[list[str]]:
    """fstab(5): comment lines start with '#'; fields are separated by blanks."""
    return [line.split() for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")]


def key_values(text: str, separator: str = "=") -> list[tuple[str, str]]:
    """KEY=VALUE files (locale.conf) and 'Keyword value' files (sshd_config) without comments."""
    out = []
    for line in text.split("\n"):
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition(separator) if separator != " " else line.partition(" ")
        out.append((key, value))
    return out


def ini(text: str) -> dict[str, list[tuple[str, str]]]:
    """systemd unit/network files: [Section] lines and Key=Value lines ('#' comments at line start)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.split("\n"):
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip()[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None
        key, _, value = line.partition("=")
        sections[current].append((key, value))
    return sections


def grub_menuentry(text: str) -> tuple[str, list[str]]:
    """(menu title, kernel arguments) of grub.cfg's menuentry: GRUB's script quoting is sh's."""
    title = next(line for line in text.split("\n") if line.startswith("menuentry "))
    linux = next(line.strip() for line in text.split("\n") if line.strip().startswith("linux "))
    words = shlex.split(title)
    assert words[0] == "menuentry" and words[2:] == ["--id", "archami", "{"], words
    return words[1], shlex.split(linux)[2:]


def menu_lst(text: str) -> tuple[str, list[str]]:
    """GRUB legacy: `title` takes the rest of its line; `kernel PATH ARGS`."""
    lines = text.split("\n")
    title = next(line for line in lines if line.startswith("title "))[len("title "):]
    kernel = next(line for line in lines if line.startswith("kernel ")).split()[2:]
    return title, kernel


def bash_array(text: str, name: str) -> list[str]:
    """mkinitcpio.conf is sourced by bash: NAME=(a b c)."""
    line = next(line for line in text.split("\n") if line.startswith(f"{name}=("))
    return shlex.split(line[len(name) + 2 : line.rindex(")")])


def json_equal(text: str, values: dict[str, object]) -> bool:
    data = json.loads(text)
    return all(data[k] == v or (isinstance(v, float) and math.isclose(data[k], v)) for k, v in values.items())
