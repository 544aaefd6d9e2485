"""Running an image's programs when the image is for another architecture than the build host.

An aarch64 image built on x86_64 still runs its own maintainer scripts, pacman hooks, update-initramfs and
grub-mkimage: the kernel hands every aarch64 ELF it is asked to execute to qemu-user, through a binfmt_misc
entry. archami registers that entry when it is missing, with the F flag (the kernel opens the interpreter
once, at registration, so it works inside chroots that do not contain it -- which is why the interpreter
must be statically linked), and says plainly what to install or enable when the host cannot.

qemu-user emulates its "max" CPU unless told otherwise, with pointer authentication, whose architected
algorithm TCG computes in software on every function entry and return of code built with branch protection
(all of Debian trixie's arm64 packages): a Python loop under it took 24 s, 2 s with QEMU_CPU=neoverse-n1,
Graviton2's core, which has no pointer authentication (its PAC instructions are NOPs). `emulated_cpu` sets
that for a build.

`registration` and `interpreter_problem` are pure; `ensure_foreign_exec` touches /proc.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archami.errors import ArchamiError
from archami.hosttools import install_hint
from archami.runner import run

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class ElfMachine:
    """How binfmt_misc recognises one architecture's executables: ELF header bytes 0-19 under a mask
    (class, data, version, e_type EXEC or DYN, e_machine), as QEMU's qemu-binfmt-conf.sh spells them."""

    name: str  # the binfmt_misc entry name
    qemu: tuple[str, ...]  # qemu-user interpreters to look for, best first (the -binfmt-P one knows flag P)
    magic: bytes
    mask: bytes


_ELF_AARCH64 = ElfMachine(
    name="qemu-aarch64",
    qemu=("/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "qemu-aarch64-static", "qemu-aarch64"),
    magic=b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
    mask=b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
)
# archami's architecture names -> the machines a host of that name runs natively.
_NATIVE = {"x86_64": {"x86_64", "i686"}, "aarch64": {"aarch64"}, "i686": {"i686"}}
_EMULATED = {"aarch64": _ELF_AARCH64}


# The CPU qemu-user emulates for each foreign architecture (QEMU_CPU; a value the user set is kept).
EMULATED_CPU = {"aarch64": "neoverse-n1"}
QEMU_CPU_ENV = "QEMU_CPU"


class ForeignExecError(ArchamiError):
    pass


def host_machine() -> str:
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def needs_emulation(architecture: str, host: str | None = None) -> bool:
    return architecture not in _NATIVE.get(host or host_machine(), {host or host_machine()})


def _escaped(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


def registration(machine: ElfMachine, interpreter: str) -> str:
    """The line written to binfmt_misc's `register` file. F: the interpreter is opened now, so chroots need no
    copy of it; P (only for Debian's *-binfmt-P wrapper, which expects it): argv[0] is passed on unchanged."""
    flags = "FP" if interpreter.endswith("-binfmt-P") else "F"
    return f":{machine.name}:M::{_escaped(machine.magic)}:{_escaped(machine.mask)}:{interpreter}:{flags}"


def elf_interpreter(header: bytes) -> bool | None:
    """Whether an ELF64 little-endian file asks for a dynamic loader (PT_INTERP), from its first bytes
    (ELF header and program headers); None when it is not such a file or the headers are cut off."""
    if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
        return None
    phoff = struct.unpack_from("<Q", header, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
    if phoff + phentsize * phnum > len(header):
        return None
    return any(struct.unpack_from("<I", header, phoff + i * phentsize)[0] == 3 for i in range(phnum))


def interpreter_problem(path: Path) -> str | None:
    """Why `path` cannot serve as an F-flag interpreter (None: it can)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(4096)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    dynamic = elf_interpreter(header)
    if dynamic is None:
        return f"{path} is not a 64-bit ELF executable"
    if dynamic:
        return f"{path} is dynamically linked (inside an image root its libraries are not the host's)"
    return None


@dataclass(frozen=True)
class BinfmtEntry:
    enabled: bool
    interpreter: str
    flags: str


def parse_entry(text: str) -> BinfmtEntry:
    """/proc/sys/fs/binfmt_misc/<name>: 'enabled', 'interpreter /path', 'flags: PF', ..."""
    lines = text.splitlines()
    values = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    return BinfmtEntry(
        enabled=bool(lines) and lines[0].strip() == "enabled",
        interpreter=values.get("interpreter", "").strip(),
        flags=values.get("flags:", "").strip(),
    )


def _find_interpreter(machine: ElfMachine) -> Path:
    problems = []
    for candidate in machine.qemu:
        found = candidate if candidate.startswith("/") and Path(candidate).exists() else shutil.which(candidate)
        if found is None:
            continue
        path = Path(found).resolve()
        problem = interpreter_problem(path)
        if problem is None:
            return Path(found)
        problems.append(problem)
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise ForeignExecError(
        f"no statically linked {machine.name} user-mode emulator to run the image's programs{detail} "
        f"({install_hint('qemu-user-static')})"
    )


def ensure_foreign_exec(architecture: str, log: logging.Logger, binfmt: Path = BINFMT_DIR) -> None:
    """Make this host run `architecture` executables (nothing to do for its own), or raise ForeignExecError."""
    if not needs_emulation(architecture):
        return
    machine = _EMULATED.get(architecture)
    if machine is None:
        raise ForeignExecError(f"building {architecture} images on a {host_machine()} host is not supported")
    register = binfmt / "register"
    if not register.exists():
        try:
            run(["mount", "-t", "binfmt_misc", "binfmt_misc", binfmt], log, what="mounting binfmt_misc")
        except ArchamiError as exc:
            raise ForeignExecError(
                f"{architecture} programs cannot run here: binfmt_misc is not available ({exc}); "
                "a container needs it from its host (e.g. docker run --privileged, or register qemu-user there)"
            ) from None
    entry_path = binfmt / machine.name
    if entry_path.exists():
        entry = parse_entry(entry_path.read_text())
        if "F" not in entry.flags:
            raise ForeignExecError(
                f"binfmt_misc entry {machine.name} (interpreter {entry.interpreter}) lacks the F flag, so chroots "
                f"cannot use it: remove it (echo -1 > {entry_path}) and archami registers one that works"
            )
        if not entry.enabled:
            log.info("enabling binfmt_misc entry %s (%s)", machine.name, entry.interpreter)
            entry_path.write_text("1")
        return
    interpreter = _find_interpreter(machine)
    line = registration(machine, str(interpreter))
    log.info("registering binfmt_misc entry %s -> %s", machine.name, interpreter)
    try:
        fd = os.open(register, os.O_WRONLY)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise ForeignExecError(
            f"cannot register {machine.name} with binfmt_misc ({exc.strerror}): run archami as root, "
            "or register it on the host (update-binfmts --enable qemu-aarch64)"
        ) from None


@contextlib.contextmanager
def emulated_cpu(architecture: str, log: logging.Logger) -> Iterator[None]:
    """While building a foreign image: QEMU_CPU for every emulated program (inherited through mmdebstrap, apt,
    dpkg and pacman; archami.runner passes it into image roots). A QEMU_CPU already set is left alone."""
    cpu = EMULATED_CPU.get(architecture)
    if cpu is None or not needs_emulation(architecture) or QEMU_CPU_ENV in os.environ:
        if QEMU_CPU_ENV in os.environ and needs_emulation(architecture):
            log.info("qemu-user CPU from $%s: %s", QEMU_CPU_ENV, os.environ[QEMU_CPU_ENV])
        yield
        return
    log.info("qemu-user emulates a %s CPU ($%s)", cpu, QEMU_CPU_ENV)
    os.environ[QEMU_CPU_ENV] = cpu
    try:
        yield
    finally:
        os.environ.pop(QEMU_CPU_ENV, None)
