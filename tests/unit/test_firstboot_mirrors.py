"""Region mirrors: pacman's mirrorlist from the per-region lists, apt's sources pointed at a region mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from archami.firstboot.agent.context import Context
from archami.firstboot.agent.mirrors import apt_region_mirror, pacman_mirrorlist, valid_region
from archami.firstboot.agent.settings import Settings

LISTS = "usr/share/ec2-pacman-mirrors"


def arch_root(tmp_path: Path, lists: dict[str, str]) -> Context:
    (tmp_path / LISTS).mkdir(parents=True)
    (tmp_path / "etc/pacman.d").mkdir(parents=True)
    (tmp_path / "etc/pacman.d/mirrorlist").write_text("#Server = commented out\n")
    for name, text in lists.items():
        (tmp_path / LISTS / name).write_text(text)
    return Context(str(tmp_path), Settings({"distro": "arch"}))


# Safe in a file name and a URL is enough: a region AWS names differently tomorrow still gets its mirror.
@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2", "us-gov-west-1", "eu-central-2",
                                    "eusc-de-east-1", "useast1", "US-EAST-1"])
def test_valid_regions(region: str) -> None:
    assert valid_region(region)


@pytest.mark.parametrize("region", ["", "../../etc/passwd", "us-east-1/../x", "us east 1", "us_east_1",
                                    "-us-east-1", "us--east-1", "us-east-1\n", "x" * 65])
def test_invalid_regions(region: str) -> None:
    assert not valid_region(region)


def test_region_list_chosen(tmp_path: Path) -> None:
    ctx = arch_root(tmp_path, {"eu-west-1.mirrorlist": "Server = http://eu/$repo/os/$arch\n",
                               "global.mirrorlist": "Server = http://global/$repo/os/$arch\n"})
    assert pacman_mirrorlist(ctx, "eu-west-1") == "mirrorlist from eu-west-1.mirrorlist"
    assert (tmp_path / "etc/pacman.d/mirrorlist").read_text() == "Server = http://eu/$repo/os/$arch\n"


def test_unknown_region_falls_back_to_global(tmp_path: Path) -> None:
    ctx = arch_root(tmp_path, {"eu-west-1.mirrorlist": "Server = http://eu/\n",
                               "global.mirrorlist": "Server = http://global/\n"})
    assert pacman_mirrorlist(ctx, "sa-east-1") == "mirrorlist from global.mirrorlist"
    assert pacman_mirrorlist(ctx, "../eu-west-1") == "mirrorlist from global.mirrorlist"
    assert (tmp_path / "etc/pacman.d/mirrorlist").read_text() == "Server = http://global/\n"


def test_list_without_servers_is_not_used(tmp_path: Path) -> None:
    ctx = arch_root(tmp_path, {"eu-west-1.mirrorlist": "# empty\n"})
    assert pacman_mirrorlist(ctx, "eu-west-1").startswith("skipped")
    assert (tmp_path / "etc/pacman.d/mirrorlist").read_text() == "#Server = commented out\n"


def test_apt_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "etc/apt").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text(
        "deb http://deb.example/debian bookworm main\n"
        "deb [signed-by=/k.gpg] http://deb.example/debian bookworm-updates main\n"
        "deb http://security.example/debian-security bookworm-security main\n# deb-src x\n"
    )
    ctx = Context(str(tmp_path), Settings({"distro": "debian"}))
    result = apt_region_mirror(ctx, "eu-west-1", "http://$region.mirror.test/debian")
    assert result == "http://eu-west-1.mirror.test/debian in /etc/apt/sources.list"
    assert (tmp_path / "etc/apt/sources.list").read_text() == (
        "deb http://eu-west-1.mirror.test/debian bookworm main\n"
        "deb [signed-by=/k.gpg] http://eu-west-1.mirror.test/debian bookworm-updates main\n"
        "deb http://security.example/debian-security bookworm-security main\n# deb-src x\n"
    )


def test_apt_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example/debian\nSuites: trixie trixie-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://deb.example/debian-security\nSuites: trixie-security\nComponents: main\n"
    )
    ctx = Context(str(tmp_path), Settings({"distro": "debian"}))
    apt_region_mirror(ctx, "us-west-2", "http://$region.mirror.test/debian")
    text = (tmp_path / "etc/apt/sources.list.d/debian.sources").read_text()
    assert "URIs: http://us-west-2.mirror.test/debian\nSuites: trixie trixie-updates" in text
    assert "URIs: http://deb.example/debian-security" in text
