"""Every option archami's EC2 fragment names is declared in the Kconfig files of the Linux source the
tests build (Debian's linux-source-6.1): a misspelt or renamed option is caught here, in seconds, rather
than after a compile (where the build would stop on it as "dropped")."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from kernel_support import SOURCE_TARBALL

from archami.kernel.fragment import default_fragment_path, fragment_options, parse_groups

pytestmark = pytest.mark.integration
_DECLARATION = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.MULTILINE)


def test_every_fragment_option_is_a_kconfig_symbol_of_linux_6_1(tmp_path: Path) -> None:
    assert SOURCE_TARBALL.is_file(), f"{SOURCE_TARBALL} missing: run `make deps`"
    subprocess.run(["tar", "-xf", SOURCE_TARBALL, "-C", tmp_path, "--wildcards", "*Kconfig*"], check=True)
    declared: set[str] = set()
    for kconfig in tmp_path.rglob("Kconfig*"):
        if kconfig.is_file():
            declared.update(_DECLARATION.findall(kconfig.read_text(errors="replace")))
    assert len(declared) > 10000  # the whole tree was read
    options = fragment_options(parse_groups(default_fragment_path().read_text()))
    unknown = sorted(o for o in options if o.removeprefix("CONFIG_") not in declared)
    assert not unknown, f"not declared in any Kconfig of {SOURCE_TARBALL.name}: {unknown}"
