"""Publish figures against the local emulator: bytes uploaded vs image size vs used bytes, and the wall
time of one publish to 1 region vs 10 regions.

    .venv/bin/python bench/publish.py [--build out/demo/trixie-ebs-hvm-x86_64]

Without --build, a synthetic 2 GiB sparse image with 96 MiB of data in scattered extents (plus 8 MiB of
allocated zeroes, which must not be sent) stands in for a build.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archami.artifacts import IMAGE_NAME, MANIFEST_NAME, Manifest, read_json, write_json_atomic
from archami.aws.clients import AwsSettings, Clients
from archami.aws.publish import publish
from archami.aws.state import PublishState
from archami.config import load_definition
from archami.config.publish import PublishSettings
from archami.release.emulator import local_aws

REPO = Path(__file__).resolve().parents[1]
TEN_REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
]
MIB = 1024**2


def synthetic_build(root: Path) -> Path:
    variant = next(v for v in load_definition(REPO / "examples" / "debian.toml").variants)
    build = root / variant.id
    build.mkdir(parents=True)
    image = build / IMAGE_NAME
    rng = random.Random(1)
    with image.open("wb") as f:
        f.truncate(2048 * MIB)
        for i in range(24):  # 24 x 4 MiB of data spread over the disk
            f.seek(i * 80 * MIB + rng.randrange(0, 8) * 512 * 1024)
            f.write(rng.randbytes(4 * MIB))
        f.seek(2000 * MIB)
        f.write(bytes(8 * MIB))
    with image.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    manifest = Manifest(
        archami_version="bench",
        definition_name=variant.name,
        definition_path="examples/debian.toml",
        definition_sha256="0",
        variant=variant,
        variant_id=variant.id,
        built_at="2026-11-25T00:00:00Z",
        build_seconds=0,
        kernel_version="bench",
        boot_mode=variant.boot_mode,
        image_size=2048 * MIB,
        used_bytes=os.stat(image).st_blocks * 512,
        image_sha256=digest,
        packages=[],
        packages_sha256="0",
    )
    write_json_atomic(build / MANIFEST_NAME, manifest)
    return build


def run(build: Path, regions: list[str], url: str, release: str) -> tuple[float, PublishState]:
    state_path = build / f"bench-{release}.state.json"
    started = time.monotonic()
    publish(
        build,
        PublishSettings(regions=regions, public=True),
        endpoint_url=url,
        release_id=release,
        state_path=state_path,
        clients=Clients(AwsSettings(endpoint_url=url)),
        poll=0.2,
    )
    elapsed = time.monotonic() - started
    return elapsed, PublishState.model_validate_json(state_path.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", type=Path, help="a build directory (image.raw + manifest.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, local_aws() as url:
        if args.build:  # a sparse copy: publishing writes its state and record beside the image
            build = Path(tmp) / args.build.name
            build.mkdir()
            subprocess.run(
                ["cp", "--sparse=always", str(args.build / IMAGE_NAME), str(args.build / MANIFEST_NAME), str(build)],
                check=True,
            )
        else:
            build = synthetic_build(Path(tmp))
        manifest = read_json(build / MANIFEST_NAME, Manifest)
        used = os.stat(build / IMAGE_NAME).st_blocks * 512
        one, state = run(build, ["us-east-1"], url, "bench1")
        ten, _ = run(build, TEN_REGIONS, url, "bench10")
    print(f"image size        {manifest.image_size / MIB:10.1f} MiB")
    print(f"used (manifest)   {manifest.used_bytes / MIB:10.1f} MiB")
    print(f"used (allocated)  {used / MIB:10.1f} MiB (the file published; a sparse copy drops allocated zeroes)")
    print(
        f"uploaded          {state.bytes_uploaded / MIB:10.1f} MiB in {state.blocks_uploaded} blocks "
        f"({100 * state.bytes_uploaded / manifest.image_size:.1f}% of the image, "
        f"{100 * state.bytes_uploaded / used:.1f}% of used)"
    )
    print(f"publish, 1 region  {one:8.1f} s (upload + register + expose)")
    print(f"publish, 10 regions {ten:7.1f} s (upload + register + 9 parallel copies + expose)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
