"""Fragment merging and the "option dropped" check, on small synthetic Kconfig trees run through the real
kconfig (`conf` compiled from the installed Linux source) and the kernel's own merge_config.sh."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from kconfig_support import build_conf, make_tree

from archami.kernel.configure import BaseConfig, configure
from archami.kernel.fragment import (
    NOT_SET,
    FragmentError,
    default_fragment_path,
    dropped,
    fragment_options,
    parse_config,
    parse_groups,
)

LOG = logging.getLogger("test.kernel")


@pytest.fixture(scope="module")
def kconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_conf(tmp_path_factory.mktemp("kconfig"))


@pytest.fixture
def tree(kconfig: Path, tmp_path: Path) -> Path:
    return make_tree(kconfig, tmp_path / "linux")


def _fragment(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "test.config"
    path.write_text("## test: options this test asks for\n" + body)
    return path


def test_fragment_wins_over_the_base_and_olddefconfig_derives_the_rest(tree: Path, tmp_path: Path) -> None:
    base = BaseConfig("base", "CONFIG_MODULES=y\nCONFIG_NET=y\nCONFIG_DRIVER_A=m\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n")
    fragment = _fragment(
        tmp_path,
        'CONFIG_DRIVER_A=y\nCONFIG_HZ_100=y\n# CONFIG_HZ_250 is not set\nCONFIG_HZ=100\nCONFIG_LOCALVERSION="-ec2"\n',
    )
    final = parse_config(configure(tree, base, fragment, LOG))
    assert final["CONFIG_DRIVER_A"] == "y"  # the base said m
    assert final["CONFIG_HZ_100"] == "y" and final["CONFIG_HZ"] == "100"
    assert final.get("CONFIG_HZ_250", NOT_SET) == NOT_SET
    assert final["CONFIG_LOCALVERSION"] == '"-ec2"'
    assert final["CONFIG_NET"] == "y"  # untouched base options stay
    assert parse_config((tree / ".config").read_text()) == final


def test_an_option_whose_dependency_is_off_is_named(tree: Path, tmp_path: Path) -> None:
    base = BaseConfig("base", "CONFIG_MODULES=y\n# CONFIG_NET is not set\n")
    fragment = _fragment(tmp_path, "CONFIG_DRIVER_A=y\nCONFIG_HZ_100=y\n")
    with pytest.raises(FragmentError) as caught:
        configure(tree, base, fragment, LOG)
    message = str(caught.value)
    assert "CONFIG_DRIVER_A (wanted y, got not set)" in message
    assert "CONFIG_HZ_100" not in message  # it held


def test_an_option_another_one_selects_cannot_be_unset(tree: Path, tmp_path: Path) -> None:
    base = BaseConfig("base", "CONFIG_MODULES=y\nCONFIG_DRIVER_B=m\n")
    fragment = _fragment(tmp_path, "# CONFIG_HELPER is not set\n")
    with pytest.raises(FragmentError, match=r"CONFIG_HELPER \(wanted not set, got m\)"):
        configure(tree, base, fragment, LOG)


def test_options_the_kernel_does_not_have_and_wrong_values_are_named(tree: Path, tmp_path: Path) -> None:
    base = BaseConfig("base", "CONFIG_MODULES=y\nCONFIG_NET=y\n")
    # HZ has no prompt: kconfig derives it from the choice, so asking for 300 cannot hold.
    fragment = _fragment(tmp_path, "CONFIG_GONE_IN_THIS_KERNEL=y\nCONFIG_HZ=300\nCONFIG_NET=y\n")
    with pytest.raises(FragmentError) as caught:
        configure(tree, base, fragment, LOG)
    message = str(caught.value)
    assert "2 option(s)" in message
    assert "CONFIG_GONE_IN_THIS_KERNEL (wanted y, got not set)" in message
    assert "CONFIG_HZ (wanted 300, got 250)" in message


def test_defconfig_base_runs_make_defconfig(tree: Path, tmp_path: Path) -> None:
    fragment = _fragment(tmp_path, "CONFIG_DRIVER_B=y\n")
    final = parse_config(configure(tree, BaseConfig.load("defconfig"), fragment, LOG))
    assert final["CONFIG_DRIVER_A"] == "m"  # from arch/defconfig
    assert final["CONFIG_DRIVER_B"] == "y" and final["CONFIG_HELPER"] == "y"  # selected, and raised to y


def test_compressed_base_configurations_are_read(tmp_path: Path) -> None:
    import lzma

    path = tmp_path / "config.amd64_none_cloud-amd64.xz"
    path.write_bytes(lzma.compress(b"CONFIG_NET=y\n# CONFIG_HZ_100 is not set\n"))
    base = BaseConfig.load(path)
    assert base.text is not None and parse_config(base.text) == {"CONFIG_NET": "y", "CONFIG_HZ_100": NOT_SET}
    (tmp_path / "empty").write_text("no options here\n")
    with pytest.raises(Exception, match="not a kernel configuration"):
        BaseConfig.load(tmp_path / "empty")


def test_not_a_kernel_tree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a kernel source tree"):
        configure(tmp_path, BaseConfig.load("defconfig"), _fragment(tmp_path, "CONFIG_NET=y\n"), LOG)


def test_groups_need_a_reason_and_options_are_set_once() -> None:
    with pytest.raises(FragmentError, match="before the first"):
        parse_groups("CONFIG_NET=y\n")
    with pytest.raises(FragmentError, match="already set in group a"):
        parse_groups("## a: one\nCONFIG_NET=y\n## b: two\n# CONFIG_NET is not set\n")
    groups = parse_groups("## a: one\nCONFIG_NET=y\n# a plain comment\n## b: two\n# CONFIG_HZ_100 is not set\n")
    assert [(g.name, g.reason, g.options) for g in groups] == [
        ("a", "one", {"CONFIG_NET": "y"}),
        ("b", "two", {"CONFIG_HZ_100": NOT_SET}),
    ]


def test_dropped_compares_values_exactly() -> None:
    requested = {"CONFIG_A": "y", "CONFIG_B": NOT_SET, "CONFIG_C": '"x"'}
    assert dropped(requested, {"CONFIG_A": "y", "CONFIG_C": '"x"'}) == []
    found = dropped(requested, {"CONFIG_A": "m", "CONFIG_B": "y", "CONFIG_C": '""'})
    assert [d.option for d in found] == ["CONFIG_A", "CONFIG_B", "CONFIG_C"]


def test_the_ec2_fragment_is_grouped_and_asks_for_the_seed_kernel() -> None:
    text = default_fragment_path().read_text()
    groups = parse_groups(text, "ec2.config")
    assert all(g.reason and g.options for g in groups)
    options = fragment_options(groups)
    # The seed's linux-ec2: voluntary preemption instead of full, 100 Hz instead of 300.
    assert options["CONFIG_PREEMPT_VOLUNTARY"] == "y" and options["CONFIG_PREEMPT"] == NOT_SET
    assert options["CONFIG_HZ"] == "100" and options["CONFIG_HZ_100"] == "y"
    # merge_config.sh reads the same options out of it (its own sed patterns): group headers are comments.
    assert parse_config(text) == options
