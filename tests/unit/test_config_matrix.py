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
    assert [v.id for v in loaded.variants] == [
        "trixie-ebs-hvm-x86_64", "trixie-ebs-hvm-aarch64", "forky-ebs-hvm-x86_64", "forky-ebs-hvm-aarch64",
    ]
    modes = {v.id: (v.boot_mode, v.kernel_package) for v in loaded.variants}
    assert modes["trixie-ebs-hvm-x86_64"] == ("uefi-preferred", "linux-image-cloud-amd64")
    assert modes["trixie-ebs-hvm-aarch64"] == ("uefi", "linux-image-cloud-arm64")


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


ARM = """
name = "t"
distro = "debian"
release = "trixie"
mirrors = ["http://deb.example/debian"]
[kernel]
stable = "linux-image-cloud-amd64"
cmdline = ["quiet"]
initramfs_modules = ["nvme"]
[packages]
add = ["less"]
[architectures.aarch64]
kernel = { stable = "linux-image-cloud-arm64", initramfs_modules = ["virtio_mmio"] }
packages = { add = ["u-boot-tools"], remove = ["less"] }
[flavours.big]
packages.add = ["less"]
[matrix]
architecture = ["x86_64", "aarch64"]
flavour = ["default", "big"]
"""


def test_architecture_settings_choose_the_kernel_and_apply_before_the_flavour() -> None:
    specs = {s.id: s for s in expand(parse_definition(ARM))}
    x86, arm = specs["trixie-ebs-hvm-x86_64"], specs["trixie-ebs-hvm-aarch64"]
    arm_big = specs["trixie-ebs-hvm-big-aarch64"]
    assert x86.kernel.package == x86.variant.kernel_package == "linux-image-cloud-amd64"
    assert arm.kernel.package == arm.variant.kernel_package == "linux-image-cloud-arm64"
    assert "linux-image-cloud-amd64" not in arm.packages and "u-boot-tools" not in x86.packages
    assert arm.kernel.initramfs_modules == ("nvme", "virtio_mmio") and x86.kernel.initramfs_modules == ("nvme",)
    assert "less" in arm.removed and "less" not in arm.packages  # the architecture removes it...
    assert "less" in arm_big.packages and "less" not in arm_big.removed  # ...and a flavour can add it back
    assert arm.mirrors == x86.mirrors == ("http://deb.example/debian",)


def test_architecture_mirrors_replace_the_definitions() -> None:
    text = ARM.replace('[architectures.aarch64]\n', '[architectures.aarch64]\nmirrors = ["http://arm.example/x"]\n')
    specs = {s.id: s for s in expand(parse_definition(text))}
    assert specs["trixie-ebs-hvm-aarch64"].mirrors == ("http://arm.example/x",)
    assert specs["trixie-ebs-hvm-x86_64"].mirrors == ("http://deb.example/debian",)


def test_an_lts_channel_needs_a_package_on_every_architecture() -> None:
    text = ARM.replace('flavour = ["default", "big"]', 'kernel = ["lts"]').replace(
        'stable = "linux-image-cloud-amd64"', 'stable = "linux-image-cloud-amd64"\nlts = "linux-image-amd64"')
    # aarch64 names its own kernel, so the definition's (amd64) LTS package is not silently used there.
    with pytest.raises(MatrixError, match=r"needs architectures\.aarch64\.kernel\.lts \(the LTS kernel package of"):
        expand(parse_definition(text))
