"""linux-ec2 against the stock Debian cloud kernel of the same source version: sizes, module count,
initramfs, boot to SSH under TCG, and the configuration options that differ in the fragment's groups.

    .venv/bin/python bench/kernel_ec2.py [--source /usr/src/linux-source-6.1.tar.xz] [--base-config defconfig]
                                         [-n 3] [--out DIR]

Builds linux-ec2 (cached: /var/cache/archami/kernel), downloads the stock linux-image-*-cloud-amd64 whose
upstream version is the source's, builds two bookworm images (examples/debian.toml, and the same with
linux-ec2 installed from a signed apt repository served on 127.0.0.1), boots each N times under BIOS.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import shutil
import statistics
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from archami.audit.ext4 import Ext4View, ext4_partitions
from archami.config import load_definition, select
from archami.image.pipeline import build_variant
from archami.kernel.aptrepo import write_apt_repository
from archami.kernel.build import KernelBuild, KernelRequest, build_kernel
from archami.kernel.configure import BaseConfig
from archami.kernel.debpkg import extract_deb
from archami.kernel.fragment import NOT_SET, default_fragment_path, parse_config, parse_groups
from archami.pacman.gpg import Gpg
from archami.runner import run
from archami.vm.boot import boot_test

REPO = Path(__file__).resolve().parents[1]
VARIANT = "bookworm-ebs-hvm-x86_64"
CACHE = Path("/var/cache/archami")
LOG = logging.getLogger("bench.kernel_ec2")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stock_cloud_kernel(version: str, into: Path) -> Path:
    """Download Debian's linux-image-*-cloud-amd64 built from upstream `version` (apt picks the archive)."""
    shown = run(["apt-cache", "show", "linux-image-cloud-amd64"], LOG, capture=True)
    for stanza in shown.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Version", "").split("-")[0] == version:
            image = fields["Depends"].split(",")[0].split(" (")[0].strip()
            into.mkdir(parents=True, exist_ok=True)
            run(["apt-get", "download", f"{image}={fields['Version']}"], LOG, cwd=into)
            return next(into.glob(f"{image}_*.deb"))
    raise SystemExit(f"no linux-image-cloud-amd64 of upstream version {version} known to apt")


def kernel_sizes(root: Path) -> dict[str, int]:
    vmlinuz = next((root / "boot").glob("vmlinuz-*"))
    modules = [p for p in (root / "lib/modules").rglob("*.ko*") if p.is_file()]
    return {"image": vmlinuz.stat().st_size, "modules_bytes": sum(p.stat().st_size for p in modules),
            "modules": len(modules)}  # fmt: skip


def module_names(root: Path) -> dict[str, tuple[str, int]]:
    """module name -> (directory under kernel/, bytes)."""
    found = {}
    for path in (root / "lib/modules").rglob("*.ko*"):
        parts = path.relative_to(next((root / "lib/modules").iterdir()) / "kernel").parts
        found[path.name.split(".ko")[0].replace("-", "_")] = ("/".join(parts[:2]), path.stat().st_size)
    return found


def initramfs_bytes(image: Path, release: str) -> int:
    for partition in ext4_partitions(image):
        entry = Ext4View(image, partition.offset).entry(f"/boot/initrd.img-{release}")
        if entry is not None:
            return entry.size
    raise SystemExit(f"{image}: no /boot/initrd.img-{release}")


def image_with_linux_ec2(record: KernelBuild, kernel_dir: Path, out: Path) -> Path:
    served = Path(tempfile.mkdtemp(prefix="archami-bench-apt-", dir="/var/tmp"))
    served.chmod(0o755)  # apt checks signatures as _apt
    try:
        return _build_with_repository(record, kernel_dir, out, served)
    finally:
        shutil.rmtree(served, ignore_errors=True)


def _build_with_repository(record: KernelBuild, kernel_dir: Path, out: Path, served: Path) -> Path:
    example = (REPO / "examples/debian.toml").read_text()
    for name in record.files_of(".deb"):
        (served / name).write_bytes((kernel_dir / name).read_bytes())
    with Gpg(Path(tempfile.mkdtemp(prefix="gnupg-", dir=out))) as gpg:
        key = gpg.generate_key("archami kernel bench <kernel-bench@archami.invalid>")
        repo = write_apt_repository(served, gpg, key, epoch=int(record.inputs["epoch"]))
    sources = [str(p) for p in (Path("/etc/apt/sources.list.d/debian.sources"),) if p.is_file()]
    with serve(served) as url:
        definition = out / "debian-linux-ec2.toml"
        text = example.replace('stable = "linux-image-cloud-amd64"', 'stable = "linux-ec2"')
        mirrors = json.dumps([*sources, repo.source_line(url)])
        text = text.replace('hostname = "debian"', f'hostname = "debian"\nmirrors = {mirrors}')
        definition.write_text(text.replace('name = "debian"', 'name = "debian-linux-ec2"', 1))
        loaded = load_definition(definition)
        return build_variant(loaded, select(loaded.variants, VARIANT)[0], out / "ec2-image", CACHE).image


def stock_image(out: Path) -> Path:
    loaded = load_definition(REPO / "examples/debian.toml")
    return build_variant(loaded, select(loaded.variants, VARIANT)[0], out / "stock-image", CACHE).image


def boots(image: Path, n: int, scratch: Path) -> list[float]:
    seconds = []
    for _ in range(n):
        report = boot_test(image, "bios", report_dir=scratch, timeout=900)
        failed = [c.name for c in report.checks if not c.ok]
        print(f"  {image.parent.name}: boot to SSH {report.boot_to_ssh_seconds}s, failed checks: {failed or 'none'}",
              flush=True)
        if report.boot_to_ssh_seconds is not None and not failed:
            seconds.append(report.boot_to_ssh_seconds)
    return seconds


def config_differences(stock: dict[str, str], ec2: dict[str, str]) -> None:
    groups = parse_groups(default_fragment_path().read_text())
    print("\nconfiguration options that differ, by fragment group (stock -> linux-ec2):")
    for group in groups:
        changed = [(o, stock.get(o, NOT_SET), ec2.get(o, NOT_SET)) for o in group.options
                   if stock.get(o, NOT_SET) != ec2.get(o, NOT_SET)]  # fmt: skip
        shown = ", ".join(f"{o.removeprefix('CONFIG_')} {s}->{e}" for o, s, e in changed) or "none"
        print(f"  {group.name} ({len(changed)}/{len(group.options)}): {shown}")
    differing = sum(1 for o in set(stock) | set(ec2) if stock.get(o, NOT_SET) != ec2.get(o, NOT_SET))
    print(f"  all options: {differing} differ in total (base configuration included)")


def measure_stock(out: Path, version: str, n: int) -> dict[str, Any]:
    """Sizes and boot times of the stock cloud kernel (saved to out/stock.json: --stock-only runs this
    alone, e.g. while linux-ec2 compiles)."""
    root = out / "stock-root"
    extract_deb(stock_cloud_kernel(version, out / "stock"), root)
    release = next((root / "lib/modules").iterdir()).name
    image = stock_image(out)
    result = {"release": release, **kernel_sizes(root), "initramfs": initramfs_bytes(image, release),
              "image_path": str(image), "boots": boots(image, n, out)}  # fmt: skip
    (out / "stock.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def installed_version(package: str) -> str:
    """Upstream version of an installed Debian package (linux-source-6.1 6.1.192-3 -> 6.1.192)."""
    return run(["dpkg-query", "-W", "-f=${Version}", package], LOG, capture=True).split("-")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/src/linux-source-6.1.tar.xz"))
    parser.add_argument("--base-config", default="defconfig")
    parser.add_argument("-n", type=int, default=3, help="boots per kernel")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--stock-only", action="store_true", help="measure only the stock kernel (stock.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = args.out or Path(tempfile.mkdtemp(prefix="archami-bench-kernel-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.stock_only:
        print(json.dumps(measure_stock(out, installed_version("linux-source-6.1"), args.n), indent=2))
        return
    base = BaseConfig.load(args.base_config)
    request = KernelRequest(source=args.source, base=base, fragment=default_fragment_path())
    record = build_kernel(request, out / "linux-ec2", LOG)
    how = "cached" if record.cached else f"cold, compile {record.compile_seconds:.0f}s"
    print(f"linux-ec2 {record.release}: {how}, {record.total_seconds:.0f}s in all", flush=True)
    saved = out / "stock.json"
    stock = json.loads(saved.read_text()) if saved.is_file() else measure_stock(out, record.version, args.n)
    ec2_root = out / "ec2-root"
    ec2_deb = f"linux-image-{record.release}_{record.version}-{record.pkgrel}_amd64.deb"
    extract_deb(out / "linux-ec2" / ec2_deb, ec2_root)
    image = image_with_linux_ec2(record, out / "linux-ec2", out)
    ec2: dict[str, Any] = {"release": record.release, **kernel_sizes(ec2_root),
                           "initramfs": initramfs_bytes(image, record.release), "boots": []}  # fmt: skip
    # Interleaved, so both kernels boot under the same load (this machine is shared: TCG times swing 5x).
    stock_image_path = Path(stock["image_path"]) if Path(stock.get("image_path", "")).is_file() else None
    stock["boots"] = [] if stock_image_path else stock["boots"]
    for _ in range(args.n):
        if stock_image_path:
            stock["boots"] += boots(stock_image_path, 1, out)
        ec2["boots"] += boots(image, 1, out)
    print(f"\n{'':<11}{'release':<22}{'image B':>11}{'modules B':>12}{'modules':>8}{'initramfs B':>12}{'boot s':>8}")
    for name, row in (("stock", stock), ("linux-ec2", ec2)):
        boot = f"{statistics.median(row['boots']):.1f}" if row["boots"] else "-"
        print(f"{name:<11}{row['release']:<22}{row['image']:>11}{row['modules_bytes']:>12}{row['modules']:>8}"
              f"{row['initramfs']:>12}{boot:>8}  (boots: {row['boots']})")
    stock_root = out / "stock-root"
    stock_modules, ec2_modules = module_names(stock_root), module_names(ec2_root)
    gone: Counter[str] = Counter()
    gone_bytes: Counter[str] = Counter()
    for module, (directory, size) in stock_modules.items():
        if module not in ec2_modules:
            gone[directory] += 1
            gone_bytes[directory] += size
    print("\nstock modules absent from linux-ec2 as modules, by directory (built in, or left out): modules, bytes")
    for directory, size in gone_bytes.most_common(25):
        print(f"  {directory:<28}{gone[directory]:>5}{size:>12}")
    stock_config = parse_config(next((stock_root / "boot").glob("config-*")).read_text())
    config_differences(stock_config, parse_config((out / "linux-ec2" / record.config_file).read_text()))
    print(f"\noutputs in {out}")


if __name__ == "__main__":
    main()
