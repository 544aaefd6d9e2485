"""Making a kernel tree's `.config`: base configuration + fragment, merged by the kernel's own tools.

    base (.config of a distro, or `make defconfig`)
      -> scripts/kconfig/merge_config.sh -m .config FRAGMENT   (the fragment's lines win)
      -> make olddefconfig                                    (kconfig resolves dependencies)
      -> every option the fragment sets must still hold        (else FragmentError naming them)

Works on any tree whose Makefile has `olddefconfig` (and `defconfig` when no base is given) and which
carries scripts/kconfig/merge_config.sh: a Linux source tree, or the tests' small synthetic ones.
"""

from __future__ import annotations

import gzip
import logging
import lzma
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from archami.errors import ArchamiError
from archami.kernel.fragment import parse_config, require_held
from archami.runner import run

DEFCONFIG = "defconfig"


@dataclass(frozen=True)
class BaseConfig:
    """Where the configuration starts: a config file's text, or the architecture's defconfig."""

    name: str  # "defconfig" or the file's name (for messages and the build record)
    text: str | None  # None: `make defconfig`

    @classmethod
    def load(cls, spec: str | Path) -> BaseConfig:
        """"defconfig", or a config file (plain, .xz or .gz: Debian's linux-config-* ships .xz)."""
        if str(spec) == DEFCONFIG:
            return cls(DEFCONFIG, None)
        path = Path(spec)
        if not path.is_file():
            raise ArchamiError(f"{path}: no such base configuration (give a .config file or 'defconfig')")
        data = path.read_bytes()
        try:
            if path.suffix == ".xz":
                data = lzma.decompress(data)
            elif path.suffix == ".gz":
                data = gzip.decompress(data)
        except (lzma.LZMAError, OSError) as exc:
            raise ArchamiError(f"{path}: cannot decompress ({exc})") from None
        text = data.decode("utf-8", errors="replace")
        if not parse_config(text):
            raise ArchamiError(f"{path}: not a kernel configuration (no CONFIG_ lines)")
        return cls(path.name, text)


def configure(
    tree: Path,
    base: BaseConfig,
    fragment: Path,
    log: logging.Logger,
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> str:
    """Write tree/.config from `base` and `fragment`; returns its text once every fragment option held
    (`check=False`: whatever kconfig made of it, for measuring what a fragment changes)."""
    config = tree / ".config"
    merge = tree / "scripts/kconfig/merge_config.sh"
    if not merge.is_file():
        raise ArchamiError(f"{tree}: no scripts/kconfig/merge_config.sh: not a kernel source tree")
    if base.text is None:
        run(["make", "-C", tree, DEFCONFIG], log, env=env)
    else:
        config.write_text(base.text)
    # -m: merge only (olddefconfig below resolves); the fragment's lines replace the base's.
    run(["sh", merge, "-m", ".config", fragment.resolve()], log, cwd=tree, env=env)
    run(["make", "-C", tree, "olddefconfig"], log, env=env)
    final = config.read_text()
    if check:
        require_held(parse_config(fragment.read_text()), parse_config(final), fragment.name)
    return final
