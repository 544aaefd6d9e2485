"""pacman formats in Python: how fast vercmp, package building and sync databases are.

Prints: comparisons per second for archami's vercmp against one `vercmp` process per pair (what a shell
script calling the binary pays); seconds to build the archami-firstboot package; seconds to write and
read back a .files database of N entries; and seconds for repo-add to add the same N packages.

    .venv/bin/python bench/pacman_formats.py [--entries 300]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from archami.pacman.archive import build_package
from archami.pacman.contents import StagingContext, stage
from archami.pacman.definitions import load_definition
from archami.pacman.pkginfo import PkgInfo
from archami.pacman.syncdb import entry_for_package, read_db, write_db
from archami.pacman.vercmp import vercmp

PACKAGES = Path(__file__).resolve().parents[1] / "packages"


def random_version(rng: random.Random) -> str:
    parts = [str(rng.randint(0, 30)) for _ in range(rng.randint(1, 4))]
    suffix = rng.choice(["", "", "a", "rc1", ".r12.gabc"])
    epoch = rng.choice(["", "", "", "1:"])
    return f"{epoch}{'.'.join(parts)}{suffix}-{rng.randint(1, 5)}"


def bench_vercmp(pairs: int) -> None:
    rng = random.Random(1)
    data = [(random_version(rng), random_version(rng)) for _ in range(pairs)]
    start = time.perf_counter()
    for a, b in data:
        vercmp(a, b)
    ours = pairs / (time.perf_counter() - start)
    sample = data[:200]
    start = time.perf_counter()
    for a, b in sample:
        subprocess.run(["vercmp", a, b], capture_output=True, check=True)
    binary = len(sample) / (time.perf_counter() - start)
    print(f"vercmp: {ours:,.0f} comparisons/s in Python, {binary:,.0f}/s running the binary per pair")


def bench_package(tmp: Path) -> None:
    definition = load_definition(PACKAGES / "archami-firstboot")
    root = tmp / "firstboot"
    root.mkdir()
    stage(definition, root, StagingContext())
    start = time.perf_counter()
    package = build_package(root, definition.pkginfo("bench"), tmp / "out", source_date_epoch=1)
    print(f"build archami-firstboot: {time.perf_counter() - start:.3f} s, {package.stat().st_size:,} bytes")


def bench_database(tmp: Path, count: int) -> None:
    out = tmp / "many"
    packages = []
    for index in range(count):
        root = tmp / f"src-{index}"
        (root / "usr/share" / f"p{index}").mkdir(parents=True)
        for leaf in range(20):
            (root / "usr/share" / f"p{index}" / f"f{leaf}").write_text(str(leaf))
        info = PkgInfo(pkgname=f"p{index}", pkgver="1.0-1", arch="any", depends=["glibc", "bash"])
        packages.append(build_package(root, info, out, source_date_epoch=1, compression="gzip"))
    start = time.perf_counter()
    entries = [entry_for_package(p) for p in packages]
    write_db(tmp / "bench.files.tar.zst", entries, with_files=True)
    written = time.perf_counter() - start
    start = time.perf_counter()
    assert len(read_db(tmp / "bench.files.tar.zst")) == count
    read = time.perf_counter() - start
    print(f"{count} packages: entries + .files db written in {written:.2f} s, read back in {read:.2f} s")
    if shutil.which("repo-add"):
        start = time.perf_counter()
        subprocess.run(["repo-add", "-q", str(tmp / "ra.db.tar.zst"), *map(str, packages)], check=True,
                       capture_output=True)  # fmt: skip
        print(f"repo-add for the same {count} packages: {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=100_000)
    args = parser.parse_args()
    bench_vercmp(args.pairs)
    with tempfile.TemporaryDirectory(prefix="archami-bench-") as tmp:
        bench_package(Path(tmp))
        bench_database(Path(tmp), args.entries)


if __name__ == "__main__":
    main()
