"""The kernel of a real Debian build, read back out of image.raw (debugfs, no mount): the manifest's kernel
facts are those of the file GRUB loads, and the payload compression they name is the one the real
decompressor accepts (its output is the ELF vmlinux with that kernel's own version banner)."""

from __future__ import annotations

import subprocess

import pytest

from archami.artifacts import BuildResult
from archami.audit.ext4 import Ext4View
from archami.audit.fsview import read_followed
from archami.bootability import PV_GRUB_LOADS, kernel_problem
from archami.bzimage import parse_bzimage, payload_span

pytestmark = pytest.mark.integration

DECOMPRESSORS = {
    "gzip": ["gzip", "-dc"], "xz": ["xz", "-dc"], "lzma": ["xz", "--format=lzma", "-dc"],
    "bzip2": ["bzip2", "-dc"], "zstd": ["zstd", "-dc"], "lz4": ["lz4", "-dc"], "lzo": ["lzop", "-dc"],
}


def test_the_manifest_knows_the_kernel_pv_grub_would_load(debian_build: BuildResult) -> None:
    manifest = debian_build.manifest
    assert manifest.kernel is not None
    root = next(p for p in manifest.partitions if p.role == "root")
    kernel = read_followed(Ext4View(debian_build.image, root.start), manifest.kernel.path, limit=256 << 20)
    assert kernel is not None, manifest.kernel.path
    facts = parse_bzimage(kernel, manifest.kernel.path)
    assert facts == manifest.kernel
    assert facts.release == manifest.kernel_version and facts.bits == 64  # `uname -r` of the image

    start, length = payload_span(kernel)
    # The kernel's build appends the uncompressed size after some formats: the tools complain of trailing
    # data and exit non-zero after writing everything, so the output is what is checked.
    out = subprocess.run(DECOMPRESSORS[facts.compression], input=kernel[start : start + length],
                         capture_output=True, check=False, timeout=120).stdout
    assert out.startswith(b"\x7fELF"), (facts.compression, out[:16])
    assert b"Linux version " + facts.release.encode() in out

    # The same kernel as a paravirtual image: pv-grub loads it only if it is gzip or xz.
    paravirtual = manifest.variant.model_copy(update={"virtualization": "paravirtual"})
    problem = kernel_problem(facts, paravirtual)
    assert (problem is None) == (facts.compression in PV_GRUB_LOADS)
    print(f"{facts.path}: Linux {facts.release}, {facts.compression}; as paravirtual: {problem or 'loadable'}")
