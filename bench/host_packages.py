"""The size of the host package set `make deps` installs, with and without recommends, on a fresh machine.

apt simulates the install (`apt-get -s`, nothing is downloaded or changed) against a stand-in for a fresh
Debian machine: a dpkg status file holding only the packages of Priority required and important (what
debootstrap's default variant installs), at the versions the host's apt lists offer. It prints how many
packages each install adds and their Installed-Size and download size, then whether the set without
recommends still holds what the boot and build tests load at run time (firmware, keyrings, certificates).

    python3 bench/host_packages.py            # the packages of src/archami/hosttools.py
    python3 bench/host_packages.py --makefile # the Makefile's APT_PACKAGES (e.g. on an older checkout)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_PRIORITIES = ("required", "important")
# Files the tests need that come from dependencies rather than from a package named in the list.
RUNTIME_NEEDS = ("seabios", "ipxe-qemu", "ovmf", "qemu-efi-aarch64", "qemu-system-data", "arch-test",
                 "ca-certificates", "xz-utils", "binutils", "libc6-dev", "dpkg-dev", "gpg-agent", "dirmngr")


def stanzas(text: str) -> dict[str, dict[str, str]]:
    """Package name -> fields, from `apt-cache dumpavail` (one stanza per package: the candidate)."""
    out: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields:
            out[fields["Package"]] = fields | {"_raw": block}
    return out


def makefile_packages() -> list[str]:
    text = (REPO / "Makefile").read_text()
    match = re.search(r"^APT_PACKAGES :=(.*?)(?:\n\n|\n[A-Z.])", text, re.S | re.M)
    assert match, "no APT_PACKAGES in the Makefile"
    return match.group(1).replace("\\\n", " ").split()


def table_packages() -> list[str]:
    sys.path.insert(0, str(REPO / "src"))
    from archami.hosttools import apt_packages

    return apt_packages()


def simulate(packages: list[str], status: Path, recommends: bool) -> list[str]:
    argv = ["apt-get", "-s", "-q", "-o", f"Dir::State::status={status}", "-o", "Dir::State::extended_states=/dev/null",
            "-o", "Debug::NoLocking=1", "install", *([] if recommends else ["--no-install-recommends"]), *packages]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"apt-get -s failed: {done.stderr.strip() or done.stdout[-2000:]}")
    return [line.split()[1] for line in done.stdout.splitlines() if line.startswith("Inst ")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--makefile", action="store_true", help="measure the Makefile's APT_PACKAGES")
    args = parser.parse_args()
    packages = makefile_packages() if args.makefile else table_packages()
    available = stanzas(subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                                       check=True).stdout)
    chosen = [p for p, f in available.items() if f.get("Priority") in BASELINE_PRIORITIES]
    with tempfile.TemporaryDirectory() as scratch:
        status = Path(scratch) / "status"
        status.write_text("")
        # The priority classes are not closed under Depends: the baseline is what installing them pulls in.
        baseline = simulate(chosen, status, recommends=False)
        status.write_text("".join(available[p]["_raw"].rstrip("\n") + "\nStatus: install ok installed\n\n"
                                  for p in baseline))
        print(f"{len(packages)} packages asked for; baseline: {len(baseline)} packages (priority "
              f"{' + '.join(BASELINE_PRIORITIES)} and their dependencies)")
        sets = {}
        for recommends in (True, False):
            names = simulate(packages, status, recommends)
            sets[recommends] = set(names)
            installed = sum(int(available[n].get("Installed-Size", "0")) for n in names) / 1024
            download = sum(int(available[n].get("Size", "0")) for n in names) / 2**20
            label = "with recommends   " if recommends else "without recommends"
            print(f"{label}: {len(names):4d} packages, {installed:7.0f} MiB installed, {download:6.0f} MiB download")
    dropped = sorted(sets[True] - sets[False])
    print(f"left out without recommends ({len(dropped)}): {' '.join(dropped)}")
    missing = [n for n in RUNTIME_NEEDS if n not in sets[False] and n not in baseline]
    print("run-time needs without recommends: " + ("all present" if not missing else f"MISSING {missing}"))


if __name__ == "__main__":
    main()
