"""The definition reference: generated files current, every key with a meaning and a readable type, defaults
that mean what they say, keys no terminal width cuts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from archami.cli.reference import DEFAULT_SHOWN, settings
from archami.cli.reference_docs import man_text, updated_readme
from archami.config import parse_definition

ROOT = Path(__file__).resolve().parents[2]
BASE = 'name = "x"\ndistro = "debian"\nrelease = "trixie"\nkernel.stable = "linux-image-cloud-amd64"\n'
ROWS = settings()
KEYS = {row.key for row in ROWS}


def archami(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from archami.cli import main; main()", *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": str(columns)}, timeout=120)


def test_readme_and_man_page_are_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert updated_readme(readme) == readme, "README.md's reference is stale: run `make docs`"
    assert (ROOT / "docs" / "archami.1").read_text() == man_text(), "docs/archami.1 is stale: run `make docs`"


def test_every_key_has_a_meaning_and_a_type_users_can_read() -> None:
    for row in ROWS:
        assert row.meaning, f"{row.key} has no meaning: add description= to its field in config/"
        assert not re.search(r"Literal|Optional|Union|Annotated|typing|None|\[|\]", row.type), (row.key, row.type)


def test_sub_keys_of_every_nested_table_are_listed() -> None:
    for prefix in ("kernel.", "files[].", "repositories[].", "flavours.<name>.", "flavours.<name>.kernel.",
                   "matrix.", "matrix.exclude[].", "publish.", "publish.share.", "architectures.<arch>.kernel.",
                   "disk.", "ssh.", "network.", "firstboot.", "reproducible."):
        assert any(k.startswith(prefix) for k in KEYS), prefix


def _reference_key(path: list[str]) -> str:
    """A key of a real definition as the reference writes it (flavours.gpu.x -> flavours.<name>.x)."""
    if path[0] == "flavours" and len(path) > 1:
        path = ["flavours", "<name>", *path[2:]]
    if path[0] == "architectures" and len(path) > 1:
        path = ["architectures", "<arch>", *path[2:]]
    return ".".join(path).replace(".[]", "[]")


def _keys_of(table: dict[str, object], path: list[str]) -> set[str]:
    keys: set[str] = set()
    for name, value in table.items():
        here = [*path, name]
        if path[-1:] == ["tags"] and path[:1] == ["publish"]:
            continue  # tag names are the user's own
        keys.add(_reference_key(here))
        if isinstance(value, dict):
            keys |= _keys_of(value, here)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                keys |= _keys_of(item, [*here, "[]"])
    return keys


def _as_listed(key: str) -> str:
    """flavours.<name>.packages.add -> packages.add: the reference lists a repeated table once, by its first key."""
    for row in ROWS:
        same = re.fullmatch(r"table \(the keys of (\S+)\)", row.type)
        if same and key.startswith(row.key + "."):
            return same.group(1) + key.removeprefix(row.key)
    return key


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_every_key_the_examples_use_is_in_the_reference(example: Path) -> None:
    used = {_as_listed(key) for key in _keys_of(tomllib.loads(example.read_text()), [])}
    assert used and used <= KEYS, sorted(used - KEYS)


def _plain_defaults() -> list[tuple[str, str]]:
    return [(r.key, r.default) for r in ROWS if r.default is not None and not r.table and "[" not in r.key
            and "<" not in r.key and r.default not in DEFAULT_SHOWN.values()]


@pytest.mark.parametrize(("key", "default"), _plain_defaults(), ids=lambda v: str(v))
def test_a_default_written_as_shown_gives_the_same_definition(key: str, default: str) -> None:
    # `key = <default>` as a TOML dotted key before any table: the schema must read it as its own default.
    written = parse_definition(BASE + f"{key} = {default}\n")
    assert written == parse_definition(BASE), f"{key} = {default} is not the default"


def test_sizes_are_shown_as_definitions_write_them() -> None:
    by_key = {r.key: r for r in ROWS}
    assert by_key["disk.size"].type == "size" and by_key["disk.size"].default == '"2GiB"'


def test_json_lists_the_same_keys_with_stable_fields() -> None:
    result = archami("schema", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["settings"]
    assert [r["key"] for r in rows] == [r.key for r in ROWS]
    assert all(set(r) == {"key", "type", "default", "required", "allowed", "meaning"} for r in rows)
    distro = next(r for r in rows if r["key"] == "distro")
    assert distro["required"] and distro["allowed"] == ["arch", "debian"]


def test_at_80_columns_no_key_is_cut() -> None:
    result = archami("schema", columns=80)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    heads = {line.split("  ")[0] for line in lines if line and not line.startswith(" ")}
    assert heads >= KEYS, sorted(KEYS - heads)[:5]


def test_markdown_option_prints_the_readme_table() -> None:
    result = archami("schema", "--markdown")
    assert result.returncode == 0 and result.stdout in (ROOT / "README.md").read_text()


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff (groff-base) is not installed")
def test_the_man_page_renders_without_warnings() -> None:
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(ROOT / "docs" / "archami.1")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    shown = subprocess.run(["groff", "-man", "-Tascii", str(ROOT / "docs" / "archami.1")], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "MANWIDTH": "80"}).stdout
    plain = re.sub(r".\x08", "", shown)
    assert "linux-image-cloud-amd64" in plain  # hyphens copy as typed, names are not hyphenated
