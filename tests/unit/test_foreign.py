"""Foreign-architecture execution: the binfmt_misc registration archami writes, and how it judges interpreters."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from archami import foreign

LOG = logging.getLogger("test")
AARCH64 = foreign._EMULATED["aarch64"]


def test_registration_line_matches_aarch64_elf_executables() -> None:
    line = foreign.registration(AARCH64, "/usr/bin/qemu-aarch64-static")
    _, name, kind, offset, magic, mask, interpreter, flags = line.split(":")
    assert (name, kind, offset, interpreter, flags) == ("qemu-aarch64", "M", "", "/usr/bin/qemu-aarch64-static", "F")
    magic_bytes = bytes.fromhex(magic.replace("\\x", ""))
    mask_bytes = bytes.fromhex(mask.replace("\\x", ""))
    # A real aarch64 ELF header (statically linked executable, ET_EXEC; PIEs are ET_DYN = 3).
    header = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\xb7\x00"
    for e_type in (2, 3):
        candidate = header[:16] + bytes([e_type]) + header[17:]
        assert bytes(c & m for c, m in zip(candidate, mask_bytes, strict=True)) == magic_bytes
    x86_64 = header[:18] + b"\x3e\x00"
    assert bytes(c & m for c, m in zip(x86_64, mask_bytes, strict=True)) != magic_bytes


def test_debians_binfmt_p_wrapper_gets_the_preserve_flag() -> None:
    line = foreign.registration(AARCH64, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P")
    assert line.endswith(":/usr/libexec/qemu-binfmt/aarch64-binfmt-P:FP")


def test_dynamic_and_static_executables_are_told_apart() -> None:
    dynamic = Path(shutil.which("ls") or "/bin/ls").resolve()
    assert foreign.elf_interpreter(dynamic.read_bytes()[:4096]) is True
    assert "dynamically linked" in (foreign.interpreter_problem(dynamic) or "")
    static = shutil.which("qemu-aarch64-static")
    if static is None:
        pytest.skip("qemu-user-static is not installed (the Makefile installs it)")
    assert foreign.elf_interpreter(Path(static).resolve().read_bytes()[:4096]) is False
    assert foreign.interpreter_problem(Path(static).resolve()) is None
    assert foreign.elf_interpreter(b"#!/bin/sh\n") is None


def test_entry_text_as_the_kernel_shows_it() -> None:
    text = ("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"
            "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n")
    assert foreign.parse_entry(text) == foreign.BinfmtEntry(True, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "PF")
    assert not foreign.parse_entry(text.replace("enabled", "disabled", 1)).enabled


def test_native_architectures_need_nothing() -> None:
    assert not foreign.needs_emulation("x86_64", host="x86_64")
    assert not foreign.needs_emulation("i686", host="x86_64")
    assert foreign.needs_emulation("aarch64", host="x86_64")
    assert not foreign.needs_emulation("aarch64", host="aarch64")
    assert foreign.needs_emulation("x86_64", host="aarch64")


@pytest.mark.skipif(not foreign.needs_emulation("aarch64"), reason="an aarch64 host runs aarch64 natively")
def test_an_entry_without_the_fix_binary_flag_is_refused_with_the_way_out(tmp_path: Path) -> None:
    (tmp_path / "register").write_text("")
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: \noffset 0\n")
    with pytest.raises(foreign.ForeignExecError, match=r"lacks the F flag.*echo -1"):
        foreign.ensure_foreign_exec("aarch64", LOG, binfmt=tmp_path)


@pytest.mark.skipif(not foreign.needs_emulation("aarch64"), reason="an aarch64 host runs aarch64 natively")
def test_a_disabled_entry_is_enabled_and_a_missing_one_registered(tmp_path: Path) -> None:
    (tmp_path / "register").write_text("")
    entry = tmp_path / "qemu-aarch64"
    entry.write_text("disabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\noffset 0\n")
    foreign.ensure_foreign_exec("aarch64", LOG, binfmt=tmp_path)
    assert entry.read_text() == "1"  # what the kernel's entry file takes to enable it
    entry.unlink()
    if shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu-user-static is not installed (the Makefile installs it)")
    foreign.ensure_foreign_exec("aarch64", LOG, binfmt=tmp_path)
    line = (tmp_path / "register").read_text()
    assert line.startswith(":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46") and line.split(":")[-1] in ("F", "FP")


def test_unsupported_foreign_architectures_say_so() -> None:
    with pytest.raises(foreign.ForeignExecError, match="not supported"):
        foreign.ensure_foreign_exec("riscv64", LOG)


@pytest.mark.skipif(not foreign.needs_emulation("aarch64"), reason="an aarch64 host runs aarch64 natively")
def test_a_foreign_build_emulates_a_cpu_without_pointer_authentication(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QEMU_CPU", raising=False)
    with foreign.emulated_cpu("aarch64", LOG):
        assert os.environ["QEMU_CPU"] == "neoverse-n1"
    assert "QEMU_CPU" not in os.environ
    with foreign.emulated_cpu("x86_64", LOG):
        assert "QEMU_CPU" not in os.environ  # a native build emulates nothing
    monkeypatch.setenv("QEMU_CPU", "cortex-a72")
    with foreign.emulated_cpu("aarch64", LOG):
        assert os.environ["QEMU_CPU"] == "cortex-a72"  # the user's choice stands
    assert os.environ["QEMU_CPU"] == "cortex-a72"


def test_the_emulated_cpu_is_one_qemu_user_knows() -> None:
    static = shutil.which("qemu-aarch64-static")
    if static is None:
        pytest.skip("qemu-user-static is not installed (the Makefile installs it)")
    # (qemu-user lists its models and exits 1)
    models = subprocess.run([static, "-cpu", "help"], capture_output=True, text=True, check=False).stdout.split()
    assert foreign.EMULATED_CPU["aarch64"] in models
