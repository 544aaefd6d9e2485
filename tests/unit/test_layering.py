"""The house rules, checked on the source: distro knowledge only in distro/, every host command through the
one runner, boto3 only in aws/. Read with `ast` (string constants and names, not comments or docstrings)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "archami"

# Words only a distro backend may use: package managers, bootstrap and initramfs tools, distro units, keyrings.
DISTRO_WORDS = re.compile(
    r"(?<![\w-])(pacman|pacman-key|apt|apt-get|dpkg|dpkg-query|mmdebstrap|mkinitcpio|update-initramfs|"
    r"sshd\.service|ssh\.service|sshdgenkeys\.service|archlinux-keyring|debian-archive-keyring|"
    r"archlinux|archlinux32|archlinuxarm)(?![\w-])"
)
# Where those words belong, and why:
DISTRO_ALLOWED = (
    "distro/",  # the backends and their rules
    "pacman/",  # archami's own implementation of pacman's package and repository formats
    "mirrors/",  # Arch Linux mirror status and per-region mirror lists (the ec2-pacman-mirrors package)
    "firstboot/agent/",  # runs inside the image and drives the image's own package manager
    "hosttools.py",  # the doctor's table: how to install each host tool on Debian/Ubuntu and on Arch
    "cli/repo_cmds.py",  # `archami repo`: the signed ec2 pacman repository
    "cli/mirrors_cmds.py",  # `archami mirrors`
)


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield str(path.relative_to(SRC)), ast.parse(path.read_text(), str(path))


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _words(tree: ast.Module) -> Iterator[tuple[int, str]]:
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value
        elif isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.alias):
            yield node.lineno, node.name


def test_no_module_outside_distro_names_a_package_manager_unit_or_keyring() -> None:
    offenders = []
    for name, tree in _modules():
        if name.startswith(DISTRO_ALLOWED):
            continue
        for line, text in _words(tree):
            found = DISTRO_WORDS.search(text.replace("archami.pacman", ""))
            if found:
                offenders.append(f"{name}:{line}: {found.group(0)!r} in {text[:60]!r}")
    assert offenders == []


def test_the_check_catches_what_it_looks_for() -> None:
    tree = ast.parse('"""pacman in a docstring is fine."""\nX = ["pacman", "-Sy"]\nunit = "sshd.service"\n')
    found = [t for _, t in _words(tree) if DISTRO_WORDS.search(t)]
    assert sorted(found) == ["pacman", "sshd.service"]


# Code that runs commands without the runner: the in-image agent (standard library only, it runs on the
# instance, not the build host) is the one exception.
RUNNER_ALLOWED = ("runner.py", "firstboot/agent/")


def test_every_host_command_goes_through_the_runner() -> None:
    offenders = []
    for name, tree in _modules():
        if name.startswith(RUNNER_ALLOWED):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name in ("subprocess", "pty") for a in node.names):
                offenders.append(f"{name}:{node.lineno}: imports subprocess")
            elif isinstance(node, ast.ImportFrom) and node.module in ("subprocess", "pty"):
                # Types and constants are fine (Popen for annotations, PIPE); starting a process is not.
                started = [a.name for a in node.names if a.name in ("run", "call", "check_call", "check_output")]
                allowed = ("PIPE", "DEVNULL", "STDOUT", "Popen", "TimeoutExpired", "CompletedProcess")
                if started or not all(a.name in allowed for a in node.names):
                    offenders.append(f"{name}:{node.lineno}: from subprocess import {[a.name for a in node.names]}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Popen":
                offenders.append(f"{name}:{node.lineno}: Popen(...)")
            elif (
                isinstance(node, ast.Attribute) and node.attr in ("system", "popen", "execv", "execvp", "spawnv")
                and isinstance(node.value, ast.Name) and node.value.id == "os"
            ):
                offenders.append(f"{name}:{node.lineno}: os.{node.attr}")
    assert offenders == []


def test_only_aws_imports_boto3() -> None:
    offenders = []
    for name, tree in _modules():
        if name.startswith("aws/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(m.split(".")[0] in ("boto3", "botocore") for m in modules):
                    offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def test_the_readme_prints_the_build_order_the_pipeline_follows() -> None:
    from archami.image.steps import EC2_STEPS, EXECUTION_ORDER, execution_order_text, step_name

    assert EXECUTION_ORDER[1:-3] == tuple(step_name(s) for s in EC2_STEPS)
    readme = (SRC.parents[1] / "README.md").read_text()
    assert f"    {execution_order_text()}\n" in readme
