"""Resolved image specs: a flavour overrides any image setting for its own variants only, and variant ids
depend on the variant alone, never on what else is in the matrix."""

from __future__ import annotations

import pytest

from archami.config import parse_definition
from archami.config.matrix import expand
from archami.config.spec import ImageSpec
from archami.distro.debian import DebianBackend
from archami.image.cache import cache_inputs, cache_key

DEBIAN = """
name = "t"
distro = "debian"
release = "trixie"
hostname = "box"
kernel = { stable = "linux-image-cloud-amd64", cmdline = ["quiet"], initramfs_modules = ["nvme"] }
packages = { add = ["sudo"] }
files = [{ path = "/etc/motd", content = "base" }, { path = "/etc/issue", content = "issue" }]
[disk]
size = "2GiB"
[ssh]
host_key_types = ["ed25519", "ecdsa"]
"""


def _specs(flavour: str) -> dict[str, ImageSpec]:
    text = DEBIAN + f"[flavours.big]\n{flavour}\n[matrix]\nflavour = [\"default\", \"big\"]\n"
    return {s.variant.flavour: s for s in expand(parse_definition(text))}


def _differences(a: ImageSpec, b: ImageSpec) -> set[str]:
    left, right = a.model_dump(), b.model_dump()
    left.pop("variant"), right.pop("variant")
    return {key for key in left if left[key] != right[key]}


@pytest.mark.parametrize(
    ("flavour", "changed"),
    [
        ('disk = { size = "8GiB" }', {"disk"}),
        ('kernel = { cmdline = ["console=hvc0"] }', {"kernel"}),
        ('files = [{ path = "/etc/motd", content = "big" }]', {"files"}),
        ('ssh = { permit_root_login = "no" }', {"ssh"}),
        ('hostname = "large"', {"hostname"}),
        ('firstboot = { grow_root = false }', {"firstboot"}),
        ('network = { stack = "dhclient" }', {"network"}),
    ],
)
def test_a_flavour_changes_only_its_own_variant_and_only_that_setting(flavour: str, changed: set[str]) -> None:
    specs = _specs(flavour)
    plain = expand(parse_definition(DEBIAN))[0]
    assert specs["default"].model_dump(exclude={"variant"}) == plain.model_dump(exclude={"variant"})
    assert _differences(specs["default"], specs["big"]) == changed


def test_flavour_overrides_merge_as_documented() -> None:
    specs = _specs(
        'disk = { size = "8GiB" }\nkernel = { cmdline = ["console=hvc0"], initramfs_modules = ["ena"] }\n'
        'files = [{ path = "/etc/motd", content = "big" }]\nssh = { permit_root_login = "no" }'
    )
    big, default = specs["big"], specs["default"]
    assert big.disk.size == 8 * 1024**3 and big.disk.esp_size == default.disk.esp_size  # only the key set
    assert big.kernel.cmdline == ("quiet", "console=hvc0")  # lists add
    assert big.kernel.initramfs_modules == ("nvme", "ena")
    assert [(f.path, f.content) for f in big.files] == [("/etc/issue", "issue"), ("/etc/motd", "big")]
    assert big.ssh.permit_root_login == "no" and big.ssh.host_key_types == ["ed25519", "ecdsa"]


def test_flavour_overrides_reach_the_build_inputs_that_depend_on_them() -> None:
    def key(spec: ImageSpec) -> str:
        return cache_key(cache_inputs(DebianBackend(), spec))

    disk_only = _specs('disk = { size = "8GiB" }')
    assert key(disk_only["big"]) == key(disk_only["default"])  # a disk size does not shape the root
    stack = _specs('network = { stack = "dhclient" }')
    assert key(stack["big"]) != key(stack["default"])  # a DHCP client package does
    assert "isc-dhcp-client" in DebianBackend().cache_inputs(stack["big"])["packages"]  # type: ignore[operator]
    assert "isc-dhcp-client" not in DebianBackend().cache_inputs(stack["default"])["packages"]  # type: ignore[operator]


def test_a_flavour_kernel_package_replaces_the_channels() -> None:
    big = _specs('kernel = { package = "linux-image-amd64" }')["big"]
    assert big.kernel.package == big.variant.kernel_package == "linux-image-amd64"
    assert "linux-image-amd64" in big.packages and "linux-image-cloud-amd64" not in big.packages


ARCH = """
name = "a"
distro = "arch"
release = "rolling"
[kernel]
stable = "linux"
lts = "linux-lts"
[flavours.gpu]
packages.add = ["nvidia-open"]
[flavours.min]
[matrix]
"""


@pytest.mark.parametrize(
    ("base", "matrix", "grown"),
    [
        # Debian: adding a release (or a flavour) to the matrix renames no existing variant.
        (DEBIAN, 'release = ["trixie"]', 'release = ["trixie", "forky"]'),
        (DEBIAN, "", 'release = ["trixie", "bookworm"]'),
        (DEBIAN + "[flavours.big]\n", "", 'flavour = ["default", "big"]'),
        # Arch: flavours, channels, root devices and architectures added beside the existing ones.
        (ARCH, 'flavour = ["default"]', 'flavour = ["default", "gpu", "min"]'),
        (ARCH, 'kernel = ["stable"]', 'kernel = ["stable", "lts"]'),
        (ARCH, 'root_device = ["ebs"]',
         'root_device = ["ebs", "instance-store"]\nvirtualization = ["hvm", "paravirtual"]'),
        (ARCH, 'architecture = ["x86_64"]', 'architecture = ["x86_64", "aarch64"]'),
    ],
)
def test_variant_ids_do_not_change_when_the_matrix_grows(base: str, matrix: str, grown: str) -> None:
    def ids(body: str) -> list[str]:
        text = base if "[matrix]" in base else base + "[matrix]\n"
        return [s.id for s in expand(parse_definition(text + body + "\n"))]

    before, after = ids(matrix), ids(grown)
    assert set(before) < set(after)


def test_ids_name_the_release_except_for_a_single_release_distro() -> None:
    assert [s.id for s in expand(parse_definition(DEBIAN))] == ["trixie-ebs-hvm-x86_64"]
    assert [s.id for s in expand(parse_definition(ARCH))] == ["ebs-hvm-x86_64"]


def test_a_value_listed_twice_is_refused_not_built_twice() -> None:
    from archami.errors import ConfigError

    with pytest.raises(ConfigError, match=r"matrix\.release: listed twice: trixie"):
        expand(parse_definition(DEBIAN + '[matrix]\nrelease = ["trixie", "trixie"]\n'))


def test_the_ec2_kernel_channel_picks_linux_ec2_and_names_the_variant() -> None:
    with_ec2 = ARCH.replace('lts = "linux-lts"\n', 'lts = "linux-lts"\nec2 = "linux-ec2"\n')
    text = with_ec2 + 'kernel = ["stable", "ec2"]\n'
    specs = {s.id: s for s in expand(parse_definition(text))}
    assert set(specs) == {"ebs-hvm-x86_64", "ebs-hvm-x86_64-ec2"}
    assert specs["ebs-hvm-x86_64-ec2"].kernel.package == "linux-ec2"
    assert "linux" not in specs["ebs-hvm-x86_64-ec2"].packages
    from archami.errors import ArchamiError

    with pytest.raises(ArchamiError, match=r"kernel\.ec2"):
        expand(parse_definition(ARCH + 'kernel = ["ec2"]\n'))
