"""Arch's merged-/usr layout for Debian paths (no root, no network)."""

from __future__ import annotations

import pytest

from .layout import _retarget, arch_path


@pytest.mark.parametrize(
    ("debian", "arch"),
    [
        ("usr/sbin/sshd", "usr/bin/sshd"),
        ("sbin/ldconfig", "usr/bin/ldconfig"),
        ("bin/bash", "usr/bin/bash"),
        ("lib/systemd/systemd", "usr/lib/systemd/systemd"),
        ("usr/lib64/ld-linux-x86-64.so.2", "usr/lib/ld-linux-x86-64.so.2"),
        ("lib64/ld-linux-x86-64.so.2", "usr/lib/ld-linux-x86-64.so.2"),
        ("var/run/sshd", "run/sshd"),
        ("usr/bin/python3", "usr/bin/python3"),
        ("usr/libexec/x", "usr/libexec/x"),
        ("libfoo", "libfoo"),  # a name that merely starts like an alias stays
    ],
)
def test_paths_move_under_usr(debian: str, arch: str) -> None:
    assert arch_path(debian) == arch


def test_a_moved_link_still_reaches_its_target() -> None:
    # /usr/sbin/init -> ../lib/systemd/systemd: from /usr/bin the same relative path still works
    assert _retarget("usr/sbin/init", "../lib/systemd/systemd", "usr/bin/init") == "../lib/systemd/systemd"
    # /usr/lib64/ld.so -> ../lib/x86_64-linux-gnu/ld.so moves one level deeper in meaning
    assert _retarget(
        "usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib/ld-linux-x86-64.so.2"
    ) == "x86_64-linux-gnu/ld-linux-x86-64.so.2"
    # an absolute target into an alias is rewritten to where the file now is
    assert _retarget("usr/bin/pidof", "/sbin/killall5", "usr/bin/pidof") == "/usr/bin/killall5"


def test_a_link_that_would_point_at_itself_is_dropped() -> None:
    assert _retarget("usr/sbin/foo", "../bin/foo", "usr/bin/foo") is None
