"""Metadata values are judged by where they go (logs, file names, URLs), not by today's AWS format."""

from __future__ import annotations

import pytest

from archami.firstboot.agent import values


@pytest.mark.parametrize("raw", ["i-0123456789abcdef0", " i-0123456789ABCDEF0\n", "mi-0a1b/../x", "instance 7",
                                 "i-" + "0" * 200, "i-é"])
def test_printable_bounded_text_is_usable(raw: str) -> None:
    assert values.text(raw, values.MAX_ID) == raw.strip()


@pytest.mark.parametrize("raw", ["", "  \n", "i-01\nforged", "i-01\x1b[2J", "i-\x00", "i-\u200b01",
                                 "i-" + "0" * 254])
def test_empty_unprintable_or_overlong_text_is_not(raw: str) -> None:
    assert values.text(raw, values.MAX_ID) is None


def test_a_plain_name_is_its_own_file_name() -> None:
    assert values.file_name("i-0123456789abcdef0") == "i-0123456789abcdef0"
    assert values.file_name("i-0123456789ABCDEF0") == "i-0123456789ABCDEF0"


@pytest.mark.parametrize("raw", ["../../etc/passwd", "a/b", ".hidden", "..", "instance 7", "i-é", "x" * 200])
def test_anything_else_becomes_a_stable_plain_name(raw: str) -> None:
    name = values.file_name(raw)
    assert name == values.file_name(raw) and name != values.file_name(raw + "1")
    assert values.file_name(name) == name  # plain: no separator, no leading dot, bounded
    assert "/" not in name and not name.startswith(".") and len(name) <= 128
