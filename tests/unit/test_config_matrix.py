"""Matrix expansion and the example definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from archami.config import load_definition, parse_definition, select
from archami.config.matrix import MatrixError, expand

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE = """
name = "t"
distro = "arch"
release = "rolling"
[kernel]
stable = "linux"
lts = "linux-lts"
[flavours.gpu]
packages.add = ["nvidia"]
"""


def test_arch_example_builds_what_boots_and_the_seed_file_has_the_seed_columns() -> None:
    shipped = load_definition(EXAMPLES / "arch.toml").variants
    assert {v.label for v in shipped} == {"ebs hvm x86_64", "ebs hvm gpu x86_64"}
    loaded = load_definition(EXAMPLES / "arch-seed-columns.toml")
    labels = {v.label for v in loaded.variants}
    # The seed's release table: ebs/s3 x paravirtual x86_64/i386, ebs hvm x86_64, ebs hvm gpu x86_64.
    assert labels == {
        "ebs paravirtual x86_64",
        "s3 paravirtual x86_64",
        "ebs paravirtual i686",
        "s3 paravirtual i686",
        "ebs hvm x86_64",
        "ebs hvm gpu x86_64",
    }
    gpu = next(s for s in loaded.specs if s.variant.flavour == "gpu")
    assert "nvidia-open" in gpu.packages and "linux" in gpu.packages
    assert "initscripts" in gpu.removed and "initscripts" not in gpu.packages


def test_debian_example_is_stable_and_testing_by_codename() -> None:
    loaded = load_definition(EXAMPLES / "debian.toml")
    assert [v.id for v in loaded.variants] == ["trixie-ebs-hvm-x86_64", "forky-ebs-hvm-x86_64"]
    assert all(v.boot_mode == "uefi-preferred" for v in loaded.variants)


def test_excludes_and_channels() -> None:
    d = parse_definition(
        BASE
        + """
[matrix]
virtualization = ["hvm", "paravirtual"]
architecture = ["x86_64", "aarch64"]
flavour = ["default", "gpu"]
kernel = ["stable", "lts"]
exclude = [{ virtualization = "paravirtual", architecture = "aarch64" }, { flavour = "gpu", kernel = "lts" }]
"""
    )
    variants = expand(d)
    ids = [v.id for v in variants]
    assert len(ids) == len(set(ids)) == 2 * 2 * 2 * 2 - 4 - 3
    assert "ebs-hvm-aarch64-lts" in ids and "ebs-hvm-gpu-x86_64-lts" not in ids
    lts = next(v for v in variants if v.id == "ebs-hvm-x86_64-lts")
    assert lts.variant.kernel_package == lts.kernel.package == "linux-lts" and "linux" not in lts.packages
    arm = next(v.variant for v in variants if v.id == "ebs-hvm-aarch64")
    assert arm.boot_mode == "uefi" and arm.ec2_architecture == "arm64"
    pv = next(v.variant for v in variants if v.id == "ebs-paravirtual-x86_64")
    assert pv.boot_mode == "legacy-bios"


def test_instance_store_aarch64_is_impossible() -> None:
    d = parse_definition(BASE + '[matrix]\nroot_device = ["instance-store"]\narchitecture = ["aarch64"]\n')
    with pytest.raises(MatrixError, match="instance-store"):
        expand(d)


def test_select_names_valid_ids() -> None:
    variants = load_definition(EXAMPLES / "debian.toml").variants
    assert [v.id for v in select(variants, "forky-ebs-hvm-x86_64")] == ["forky-ebs-hvm-x86_64"]
    with pytest.raises(MatrixError, match="trixie-ebs-hvm-x86_64"):
        select(variants, "nope")


def test_services_from_flavour_are_merged_in_order() -> None:
    d = parse_definition(
        BASE
        + """
[services]
enable = ["sshd.service"]
[flavours.gpu.services]
enable = ["nvidia-persistenced.service", "sshd.service"]
[matrix]
flavour = ["gpu"]
"""
    )
    (v,) = expand(d)
    assert v.services.enabled == ("sshd.service", "nvidia-persistenced.service")
