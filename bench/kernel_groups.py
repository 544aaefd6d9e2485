"""What each pruning group of archami's EC2 fragment removes from a distro kernel, without compiling:
kconfig is run over the base configuration with the whole fragment, then with the fragment minus one
group; the options that group switches off are mapped to modules through the kernel Makefiles'
`obj-$(CONFIG_X) += name.o` lines, and weighed with the stock kernel's own module files.

    .venv/bin/python bench/kernel_groups.py --stock-root DIR
        [--base /usr/src/linux-config-6.1/config.amd64_none_cloud-amd64.xz]

--stock-root: the unpacked stock linux-image .deb (bench/kernel_ec2.py leaves it in OUT/stock-root).
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from pathlib import Path

from archami.kernel.configure import BaseConfig, configure
from archami.kernel.fragment import NOT_SET, default_fragment_path, parse_config, parse_groups
from archami.runner import run

LOG = logging.getLogger("bench.kernel_groups")
_OBJ = re.compile(r"^obj-\$\(CONFIG_([A-Za-z0-9_]+)\)\s*[+:]?=\s*(.*)$")
PRUNING = ("xen-backends", "other-clouds", "pc-hardware", "storage-hbas", "sound", "graphics", "wireless", "usb-hid",
           "laptops", "media", "staging-comedi")  # fmt: skip


def module_symbols(tree: Path) -> dict[str, str]:
    """kernel/<dir>/<name>.ko -> the CONFIG symbol whose obj- line builds it."""
    found: dict[str, str] = {}
    for makefile in tree.rglob("Makefile"):
        directory = makefile.parent.relative_to(tree)
        text = makefile.read_text(errors="replace").replace("\\\n", " ")
        for line in text.splitlines():
            match = _OBJ.match(line.strip())
            if match:
                for word in match.group(2).split():
                    if word.endswith(".o"):
                        found[f"kernel/{directory}/{word[:-2]}.ko"] = f"CONFIG_{match.group(1)}"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/src/linux-source-6.1.tar.xz"))
    parser.add_argument("--base", default="/usr/src/linux-config-6.1/config.amd64_none_cloud-amd64.xz")
    parser.add_argument("--stock-root", type=Path, required=True)
    args = parser.parse_args()
    base = BaseConfig.load(args.base)
    groups = parse_groups(default_fragment_path().read_text())
    stock_modules = {str(p.relative_to(next((args.stock_root / "lib/modules").iterdir()))): p.stat().st_size
                     for p in (args.stock_root / "lib/modules").rglob("*.ko")}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="archami-groups-", dir="/var/tmp") as tmp:
        run(["tar", "-xf", args.source, "-C", tmp], LOG)
        tree = next(p for p in Path(tmp).iterdir() if (p / "Kconfig").is_file())
        symbols = module_symbols(tree)
        full_fragment = default_fragment_path()
        full = parse_config(configure(tree, base, full_fragment, LOG))
        print(f"base {base.name}: {len(stock_modules)} stock modules, {sum(stock_modules.values())} bytes")
        print(f"{'group':<16}{'options off':>12}{'modules':>9}{'bytes':>12}  examples")
        union: dict[str, int] = {}
        for group in groups:
            if group.name not in PRUNING:
                continue
            without = Path(tmp) / f"without-{group.name}.config"
            kept = [line for line in full_fragment.read_text().splitlines()
                    if not any(line.strip() in (f"{o}={v}", f"# {o} is not set") for o, v in group.options.items())
                    and not line.startswith(f"## {group.name}:")]  # fmt: skip
            without.write_text("\n".join(kept) + "\n")
            # Without the group another group's option may lose too (laptop drivers select HID): unchecked.
            partial = parse_config(configure(tree, base, without, LOG, check=False))
            off = {o for o, v in partial.items() if v != NOT_SET and full.get(o, NOT_SET) == NOT_SET}
            removed = {m: s for m, s in stock_modules.items() if symbols.get(m) in off}
            union.update(removed)
            examples = ", ".join(sorted(Path(m).stem for m in removed)[:4])
            print(f"{group.name:<16}{len(off):>12}{len(removed):>9}{sum(removed.values()):>12}  {examples}")
        # Groups overlap (without the laptop group, Surface drivers select HID back in): count each module once.
        print(f"{'all pruning':<16}{'':>12}{len(union):>9}{sum(union.values()):>12}  (each module once)")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
