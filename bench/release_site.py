"""Release site cost at the seed's scale and beyond: records of many releases, variants and regions.

Writes N synthetic release records (each variant with P packages, a few changed per release), then times
`build_site` (changelogs between every pair, HTML, JSON, Markdown) and prints sizes.

    .venv/bin/python bench/release_site.py [--releases 52] [--variants 6] [--regions 30] [--packages 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from archami.release.records import (
    BootTestResult,
    RegionAmi,
    ReleaseRecord,
    VariantInfo,
    VariantRelease,
    save_record,
)
from archami.release.site import build_site
from archami.release.table import REGION_ORDER

VARIANTS = [("ebs", "paravirtual", "x86_64", "default"), ("instance-store", "paravirtual", "x86_64", "default"),
            ("ebs", "paravirtual", "i686", "default"), ("instance-store", "paravirtual", "i686", "default"),
            ("ebs", "hvm", "x86_64", "default"), ("ebs", "hvm", "x86_64", "gpu"), ("ebs", "hvm", "aarch64", "default")]


def _record(index: int, n_variants: int, regions: list[str], n_packages: int) -> ReleaseRecord:
    release_id = (date(2026, 1, 1) + timedelta(days=7 * index)).strftime("%Y.%m.%d")
    # Every 10th package moves one pkgrel per release: a realistic weekly churn.
    packages = {f"pkg{p:04d}": f"1.{p}-{index if p % 10 == 0 else 1}" for p in range(n_packages)}
    packages["linux"] = f"6.12.{index}.arch1-1"
    variants = []
    for root, virt, arch, flavour in VARIANTS[:n_variants]:
        parts = [root, virt] + ([flavour] if flavour != "default" else []) + [arch]
        label = ["s3" if root == "instance-store" else "ebs", virt, *parts[2:]]
        info = VariantInfo(id="-".join(parts), label=" ".join(label), release="rolling", root_device=root,
                           virtualization=virt, architecture=arch, flavour=flavour, kernel_package="linux")
        variants.append(VariantRelease(
            variant=info, ami_name=f"archlinux-{info.id}-{release_id}", boot_mode="uefi-preferred",
            kernel_version=f"6.12.{index}-arch1-1", image_sha256="0" * 64, image_size=2**31, used_bytes=2**29,
            packages_sha256="0" * 64, packages=packages, built_at="2026-01-01T00:00:00Z",
            boot_test=BootTestResult(status="skipped", reason="bench"),
            regions={r: RegionAmi(region=r, ami_id=f"ami-{index:08x}{i:09x}") for i, r in enumerate(regions)},
        ))
    return ReleaseRecord(release_id=release_id, definition_name="archlinux", distro="arch",
                         definition_sha256="0" * 64, created_at="2026-01-01T00:00:00Z", archami_version="bench",
                         variants=variants)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--releases", type=int, default=52)
    parser.add_argument("--variants", type=int, default=6, choices=range(1, len(VARIANTS) + 1))
    parser.add_argument("--regions", type=int, default=30)
    parser.add_argument("--packages", type=int, default=300)
    args = parser.parse_args()
    regions = REGION_ORDER[: args.regions]
    with tempfile.TemporaryDirectory() as tmp:
        releases = Path(tmp) / "releases"
        for i in range(args.releases):
            save_record(releases, _record(i, args.variants, regions, args.packages))
        started = time.perf_counter()
        files = build_site(releases, Path(tmp) / "site")
        seconds = time.perf_counter() - started
        records_bytes = sum(p.stat().st_size for p in releases.glob("*.json"))
        print(f"{args.releases} releases x {args.variants} variants x {len(regions)} regions, "
              f"{args.packages} packages each")
        print(f"build_site: {seconds:.2f} s")
        print(f"records: {records_bytes / 1e6:.1f} MB; index.html {files.index.stat().st_size / 1e3:.0f} kB; "
              f"releases.json {files.json.stat().st_size / 1e6:.1f} MB; releases.md "
              f"{files.markdown.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
