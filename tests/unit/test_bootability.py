"""What EC2 can boot: the pv-grub layout/menu/AKI agreement, and the refusals plan, build and publish make."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archami.artifacts import Manifest
from archami.bootability import PV_GRUB_LOADS, kernel_problem, manifest_problem, spec_problem
from archami.bzimage import PAYLOAD_MAGIC, KernelFacts
from archami.cli import app
from archami.config import load_definition
from archami.image.grub import BootFiles, menu_lst
from archami.image.layout import plan_layout
from archami.image.pvgrub import FIRST_PARTITION, PARAVIRTUAL_BOOT, UNPARTITIONED, pv_grub_boot
from archami.release.records import BootTestResult
from archami.release.steps import not_checked_here

ROOT = Path(__file__).resolve().parents[2]
SEED = load_definition(ROOT / "examples" / "arch-seed-columns.toml")
ARCH = load_definition(ROOT / "examples" / "arch.toml")
GIB, MIB = 1024**3, 1024**2
# The AKI names Amazon publishes, as the emulator's fixture lists them (tests/integration/aws/amis.json).
AMAZON_AKIS = ["pv-grub-hd0_1.04-x86_64.gz", "pv-grub-hd0_1.05-x86_64.gz", "pv-grub-hd00_1.05-x86_64.gz",
               "pv-grub-hd00_1.05-i386.gz"]


def test_layout_menu_lst_root_device_and_aki_agree() -> None:
    """The three places a paravirtual image's disk is described, read back from what each one produces."""
    layout = plan_layout(2 * GIB, virtualization="paravirtual", esp_size=64 * MIB, seed="s")
    boot = pv_grub_boot(layout.scheme)
    assert boot is PARAVIRTUAL_BOOT
    menu = menu_lst("t", BootFiles("/vmlinuz", "/initrd.img"), "root=UUID=u ro", layout.scheme)
    (root_line,) = [line for line in menu.splitlines() if line.startswith("root ")]
    grub_device = root_line.removeprefix("root ")
    akis = [name for name in AMAZON_AKIS if fnmatch.fnmatch(name, boot.aki_name)]
    unpartitioned = layout.scheme == "none" and [(p.number, p.start, p.size) for p in layout.partitions] == [
        (0, 0, 2 * GIB)]
    # No partition table <=> GRUB legacy's whole-disk device <=> the hd0 kernels <=> the volume is sda1 itself.
    assert unpartitioned == (re.fullmatch(r"\(hd0\)", grub_device) is not None)
    assert unpartitioned == (bool(akis) and all(a.startswith("pv-grub-hd0_") for a in akis))
    assert unpartitioned == (boot.root_device_name == "/dev/sda1")
    assert unpartitioned  # what archami builds
    # The other family really is the other one: hd00 reads the first partition of a partitioned disk.
    assert FIRST_PARTITION.grub_root == "(hd0,0)" and fnmatch.fnmatch("pv-grub-hd00_1.05-x86_64.gz",
                                                                      FIRST_PARTITION.aki_name)
    assert not fnmatch.fnmatch("pv-grub-hd00_1.05-x86_64.gz", UNPARTITIONED.aki_name)
    assert pv_grub_boot(None) is PARAVIRTUAL_BOOT  # manifests from before partition schemes were recorded


def test_the_seed_columns_that_cannot_boot_say_why() -> None:
    problems = {s.id: spec_problem(s) for s in SEED.specs}
    assert problems["ebs-hvm-x86_64"] is None and problems["ebs-hvm-gpu-x86_64"] is None
    for vid in ("ebs-paravirtual-x86_64", "instance-store-paravirtual-x86_64"):
        assert "zstd-compressed" in str(problems[vid]) and "pv-grub" in str(problems[vid])
    for vid in ("ebs-paravirtual-i686", "instance-store-paravirtual-i686"):
        assert "Linux 5.9 removed 32-bit Xen PV" in str(problems[vid])


def _definition(tmp_path: Path, extra: str, matrix: str) -> Path:
    path = tmp_path / "debian.toml"
    example = (ROOT / "examples" / "debian.toml").read_text().split("\n[matrix]")[0]
    path.write_text(f"{example}\n{extra}\n[matrix]\nrelease = [\"trixie\"]\n{matrix}\n")
    return path


def test_debian_gpu_without_non_free_is_refused_and_debian_paravirtual_waits_for_its_kernel(tmp_path: Path) -> None:
    loaded = load_definition(_definition(
        tmp_path,
        '[flavours.gpu]\ninstance_type = "g4dn.xlarge"\npackages.add = ["nvidia-driver", "nvidia-smi"]\n',
        'virtualization = ["hvm", "paravirtual"]\nflavour = ["default", "gpu"]\n'
        'exclude = [{ flavour = "gpu", virtualization = "paravirtual" }]',
    ))
    problems = {s.id: spec_problem(s) for s in loaded.specs}
    assert "non-free component" in str(problems["trixie-ebs-hvm-gpu-x86_64"])
    assert "nvidia-driver, nvidia-smi" in str(problems["trixie-ebs-hvm-gpu-x86_64"])
    assert problems["trixie-ebs-hvm-x86_64"] is None
    assert problems["trixie-ebs-paravirtual-x86_64"] is None  # its kernel's compression is known once built


def test_i686_is_refused_for_both_distros(tmp_path: Path) -> None:
    loaded = load_definition(_definition(tmp_path, "", 'architecture = ["i686"]'))
    assert "no i386 kernel" in str(spec_problem(loaded.specs[0]))
    arch_i686 = ARCH.specs[0].model_copy(update={"variant": ARCH.specs[0].variant.model_copy(
        update={"architecture": "i686"})})
    assert "Arch Linux has no i686 port" in str(spec_problem(arch_i686))
    assert arch_i686.variant.boot_mode == "legacy-bios"  # EC2 has UEFI for x86_64 and arm64 only


def facts(compression: str, release: str = "6.12.118+deb13-cloud-amd64", bits: int = 64) -> KernelFacts:
    major, minor = (int(x) for x in release.split(".")[:2])
    return KernelFacts(path="/vmlinuz", release=release, version=(major, minor), protocol="2.15", bits=bits,
                       compression=compression)


@pytest.mark.parametrize("compression", sorted({name for name, _ in PAYLOAD_MAGIC} | {"unknown"}))
def test_pv_grub_loads_gzip_and_xz_only(compression: str) -> None:
    pv = SEED.spec("ebs-paravirtual-x86_64").variant
    problem = kernel_problem(facts(compression), pv)
    assert (problem is None) == (compression in PV_GRUB_LOADS)
    if problem:
        assert f"is {compression}-compressed" in problem and "6.12.118+deb13-cloud-amd64" in problem
    assert kernel_problem(facts(compression), SEED.spec("ebs-hvm-x86_64").variant) is None  # GRUB 2 loads all


def test_32_bit_paravirtual_kernels_end_with_linux_5_8() -> None:
    pv = SEED.spec("ebs-paravirtual-x86_64").variant
    assert kernel_problem(facts("gzip", "5.8.18-1-686", bits=32), pv) is None
    assert "32-bit" in str(kernel_problem(facts("gzip", "5.9.0-1-686", bits=32), pv))
    assert kernel_problem(facts("gzip", "5.9.0-1-amd64", bits=64), pv) is None


def test_publish_needs_the_kernel_of_a_paravirtual_build() -> None:
    spec = SEED.spec("ebs-paravirtual-x86_64")
    manifest = Manifest(
        archami_version="0", definition_name="archlinux", definition_path="x", definition_sha256="0",
        variant=spec.variant, variant_id=spec.id, built_at="2026-12-01T00:00:00Z", build_seconds=0,
        kernel_version="6.12", boot_mode="legacy-bios", image_size=1, used_bytes=1, image_sha256="0",
        packages=[], packages_sha256="0",
    )
    assert "rebuild it" in str(manifest_problem(manifest))
    assert manifest_problem(manifest.model_copy(update={"kernel": facts("xz")})) is None
    assert "zstd" in str(manifest_problem(manifest.model_copy(update={"kernel": facts("zstd")})))
    hvm = manifest.model_copy(update={"variant": SEED.spec("ebs-hvm-x86_64").variant})
    assert manifest_problem(hvm) is None  # nothing to check: GRUB 2 loads every payload


def test_gpu_boots_are_recorded_as_not_testing_the_gpu() -> None:
    assert not_checked_here(ARCH.spec("ebs-hvm-gpu-x86_64")) == ["GPU"]
    assert not_checked_here(ARCH.spec("ebs-hvm-x86_64")) == []
    passed = BootTestResult(status="passed", not_checked=["GPU"])
    assert passed.shown == "booted, GPU not tested"
    assert BootTestResult(status="passed").shown == "passed"
    assert BootTestResult(status="failed", not_checked=["GPU"]).shown == "failed"


def test_plan_shows_what_cannot_boot_and_what_is_not_tested_here() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["plan", str(ROOT / "examples" / "arch-seed-columns.toml"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output)["variants"]}
    for vid, row in rows.items():
        spec = SEED.spec(vid)
        assert row["publishable"] == (spec_problem(spec) is None) and row["refusal"] == spec_problem(spec)
    assert rows["ebs-hvm-gpu-x86_64"]["instance_type"] == "g4dn.xlarge"
    assert rows["ebs-hvm-gpu-x86_64"]["boot_test_note"].startswith("GPU not tested")
    assert rows["ebs-paravirtual-x86_64"]["boot_test"] == "none"
    assert "Xen" in rows["ebs-paravirtual-x86_64"]["boot_test_note"]
    shown = runner.invoke(app, ["plan", str(ROOT / "examples" / "arch-seed-columns.toml")],
                          env={"COLUMNS": "250"})
    assert shown.exit_code == 0
    text = " ".join(shown.output.split())
    assert "ebs-paravirtual-i686 is not released: i686 paravirtual: Linux 5.9 removed 32-bit Xen PV guests" in text
    assert "ebs-hvm-gpu-x86_64: boot test: GPU not tested" in text
