"""`archami release` survives a failing variant, against moto in server mode, through the CLI.

The Debian example as three variants: the plain one (the session's real `debian_build`, adopted with
`--builds`), a "broken" flavour whose finished build is no disk image at all (its audit fails: the failure on
purpose), and a gpu flavour Debian cannot have (skipped before anything is built). The first run publishes
the plain variant, records the release as partial and the page says which variant failed and why; the
broken build is then repaired and the same command resumes the release: only the failed variant is
retried, the record becomes complete, and no AMI exists twice. Boot tests are skipped (`--skip-boot all`):
the vm stage's tests boot this same image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from archami.artifacts import AUDIT_REPORT_NAME, IMAGE_NAME, MANIFEST_NAME, BuildResult, write_json_atomic
from archami.config import load_definition
from archami.release.emulator import local_aws
from archami.release.records import load_record
from archami.release.site import build_site

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ARCHAMI = Path(sys.executable).parent / "archami"
REGION = "us-east-1"
PLAIN, BROKEN, GPU = "trixie-ebs-hvm-x86_64", "trixie-ebs-hvm-broken-x86_64", "trixie-ebs-hvm-gpu-x86_64"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with local_aws() as url:
        yield url


def write_definition(directory: Path) -> Path:
    example = (REPO / "examples" / "debian.toml").read_text().split("\n[matrix]")[0]
    path = directory / "debian-partial.toml"
    path.write_text(example + """
[flavours.broken]
description = "the same image, its build replaced by a non-image on purpose"

[flavours.gpu]
description = "Debian with NVIDIA drivers"
instance_type = "g4dn.xlarge"
packages.add = ["nvidia-driver"]

[matrix]
release = ["trixie"]
flavour = ["default", "broken", "gpu"]
""")
    return path


def adopt(build: BuildResult, definition: Path, builds: Path, variant_id: str, *, broken: bool) -> None:
    """A finished build of `variant_id` of this definition: the real image, or (broken) a file of the same
    size with no filesystem in it."""
    loaded = load_definition(definition)
    spec = loaded.spec(variant_id)
    out = builds / variant_id
    out.mkdir(parents=True, exist_ok=True)
    image = out / IMAGE_NAME
    image.unlink(missing_ok=True)
    if broken:
        with image.open("wb") as f:
            f.truncate(build.manifest.image_size)
    else:
        os.link(build.image, image)
    # The build's audit of that image (publish checks image, manifest and audit agree).
    shutil.copyfile(build.out_dir / AUDIT_REPORT_NAME, out / AUDIT_REPORT_NAME)
    manifest = build.manifest.model_copy(update={
        "definition_sha256": loaded.sha256, "definition_path": str(definition), "variant": spec.variant,
        "variant_id": spec.id,
    })
    write_json_atomic(out / MANIFEST_NAME, manifest)


def release(tmp: Path, definition: Path, endpoint: str, *, accept: bool = True) -> tuple[int, dict[str, Any], str]:
    """Exit code, the outcome (--json), and stderr with the error archami printed after the outcome as a
    second JSON document when the release did not succeed. The page goes to tmp/page once verified."""
    result = subprocess.run(
        [str(ARCHAMI), "release", str(definition), "--regions", REGION, "--endpoint-url", endpoint,
         *(["--accept-unverified", "moto"] if accept else []), "--site", str(tmp / "page"),
         "--skip-boot", "all", "--builds", str(tmp / "builds"), "--releases", str(tmp / "releases"),
         "--work", str(tmp / "work"), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=1200, check=False,
    )
    outcome, end = json.JSONDecoder().raw_decode(result.stdout)
    error = result.stdout[end:].strip()
    return result.returncode, outcome, result.stderr + (json.dumps(json.loads(error)) if error else "")


def image_names(endpoint: str) -> list[str]:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    return sorted(i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"])


def test_a_failing_variant_leaves_a_partial_release_that_the_next_run_completes(
    tmp_path: Path, debian_build: BuildResult, endpoint: str
) -> None:
    definition = write_definition(tmp_path)
    adopt(debian_build, definition, tmp_path / "builds", PLAIN, broken=False)
    adopt(debian_build, definition, tmp_path / "builds", BROKEN, broken=True)

    code, first, stderr = release(tmp_path, definition, endpoint)
    assert code == 1, stderr[-3000:]  # not a success: a variant failed
    assert f"{BROKEN} failed; run the same command to retry them" in stderr
    assert first["status"] == "failed" and first["record_status"] == "partial", first["state"]["variants"]
    progress = first["state"]["variants"]
    assert progress[BROKEN]["failed_step"] == "audit" and "no ext4 filesystem" in progress[BROKEN]["error"]
    assert "non-free" in progress[GPU]["skipped"] and progress[GPU]["built"] is False
    record = load_record(Path(first["record"]))
    rid = record.release_id
    assert record.status == "partial" and [v.variant.id for v in record.variants] == [PLAIN]
    outcomes = {u.variant.id: (u.outcome, u.step) for u in record.not_released}
    assert outcomes == {BROKEN: ("failed", "audit"), GPU: ("skipped", None)}
    assert image_names(endpoint) == [f"debian-{PLAIN}-{rid}"]

    site = build_site(tmp_path / "releases", tmp_path / "site")
    html = site.index.read_text()
    assert "Partial release: 1 variant(s) failed" in html
    assert "trixie ebs hvm broken x86_64</strong>: failed at audit:" in html
    assert "trixie ebs hvm gpu x86_64</strong>: skipped:" in html and "non-free component" in html

    adopt(debian_build, definition, tmp_path / "builds", BROKEN, broken=False)  # the build repaired
    code, second, stderr = release(tmp_path, definition, endpoint)
    assert code == 0, stderr[-3000:]
    assert second["resumed"] is True and second["release_id"] == rid and second["state"]["attempts"] == 2
    assert second["status"] == "complete" and second["record_status"] == "complete"
    assert f"{PLAIN}: already published, nothing to do" in stderr
    record = load_record(Path(second["record"]))
    assert sorted(v.variant.id for v in record.variants) == [BROKEN, PLAIN]
    assert [(u.variant.id, u.outcome) for u in record.not_released] == [(GPU, "skipped")]
    assert image_names(endpoint) == sorted([f"debian-{PLAIN}-{rid}", f"debian-{BROKEN}-{rid}"])  # none twice
    assert "Partial release" not in build_site(tmp_path / "releases", tmp_path / "site").index.read_text()
    # `--site`: the page was updated by the release itself, once verified; what moto cannot answer is shown
    # as unverified (accepted with --accept-unverified moto), with the reason.
    assert second["verification"]["status"] == "accepted-unverified" and second["site"]
    page = (tmp_path / "page" / "index.html").read_text()
    assert f'data-release="{rid}"' in page and 'class="unverified"' in page and "moto keeps no BootMode" in page

    # Without accepting them, the next release is held back: recorded, named problems, the page unchanged.
    code, third, stderr = release(tmp_path, definition, endpoint, accept=False)
    assert code == 1 and "held back, the page and streams not updated" in stderr, stderr[-3000:]
    assert third["verification"]["status"] == "held-back" and third["site"] is None
    assert f"{REGION} " in third["verification"]["problems"][0] and "(Missing)" in stderr
    assert third["release_id"] != rid and f'data-release="{third["release_id"]}"' not in \
        (tmp_path / "page" / "index.html").read_text()
