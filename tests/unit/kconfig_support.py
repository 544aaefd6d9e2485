"""Small synthetic kernel trees driven by the REAL kconfig: `conf` is compiled from the kconfig sources
in the installed Linux source tarball (Debian's linux-source-6.1, installed by `make deps`), and
merge_config.sh is the kernel's own. No kernel is built."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")

# A few symbols with the relations that make kconfig drop requests: a dependency, a select, a choice,
# a derived int, a string, and a tristate that needs MODULES.
KCONFIG = """\
mainmenu "archami test kernel"

config MODULES
	bool "Loadable modules"
	modules

config NET
	bool "Networking"

config DRIVER_A
	tristate "Driver A (needs NET)"
	depends on NET

config HELPER
	tristate "A helper library"

config DRIVER_B
	tristate "Driver B (selects HELPER)"
	select HELPER

choice
	prompt "Timer frequency"
	default HZ_250

config HZ_100
	bool "100 Hz"

config HZ_250
	bool "250 Hz"

endchoice

config HZ
	int
	default 100 if HZ_100
	default 250 if HZ_250

config LOCALVERSION
	string "Local version"
	default ""
"""

# The targets archami's configure() runs, the way the kernel's own Makefile drives scripts/kconfig/conf.
MAKEFILE = """\
CONF := scripts/kconfig/conf
olddefconfig:
\t$(CONF) --olddefconfig Kconfig
defconfig:
\t$(CONF) --defconfig=arch/defconfig Kconfig
"""

DEFCONFIG = "CONFIG_MODULES=y\nCONFIG_NET=y\nCONFIG_DRIVER_A=m\n"


def build_conf(work: Path) -> Path:
    """scripts/kconfig/conf and merge_config.sh from the installed source, in work/kconfig."""
    assert SOURCE_TARBALL.is_file(), f"{SOURCE_TARBALL} missing: run `make deps` (package linux-source-6.1)"
    for tool in ("gcc", "flex", "bison", "tar"):
        assert shutil.which(tool), f"{tool} missing: run `make deps`"
    subprocess.run(["tar", "-xf", SOURCE_TARBALL, "-C", work, "--wildcards", "*/scripts/kconfig/*"], check=True)
    kconfig = next(work.glob("*/scripts/kconfig"))
    # What scripts/kconfig/Makefile does for `conf`: generate the lexer and parser, compile the C files.
    subprocess.run(["flex", "-L", "-o", "lexer.lex.c", "lexer.l"], cwd=kconfig, check=True)
    subprocess.run(["bison", "-t", "-l", "--defines=parser.tab.h", "-o", "parser.tab.c", "parser.y"],
                   cwd=kconfig, check=True)  # fmt: skip
    sources = ["conf.c", "confdata.c", "expr.c", "lexer.lex.c", "menu.c", "parser.tab.c", "preprocess.c",
               "symbol.c", "util.c"]  # fmt: skip
    subprocess.run(["gcc", "-O1", "-I.", "-o", "conf", *sources], cwd=kconfig, check=True)
    return kconfig


def make_tree(kconfig: Path, target: Path) -> Path:
    """A tree that looks like a kernel source tree to archami.kernel.configure."""
    (target / "scripts/kconfig").mkdir(parents=True)
    shutil.copy2(kconfig / "conf", target / "scripts/kconfig/conf")
    shutil.copy2(kconfig / "merge_config.sh", target / "scripts/kconfig/merge_config.sh")
    (target / "Kconfig").write_text(KCONFIG)
    (target / "Makefile").write_text(MAKEFILE)
    (target / "arch").mkdir()
    (target / "arch/defconfig").write_text(DEFCONFIG)
    return target
