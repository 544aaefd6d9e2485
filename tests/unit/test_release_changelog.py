from pathlib import Path

import pytest

from archami.distro.rules import ARCH, DEBIAN
from archami.release.changelog import changelog, changelogs, diff_packages
from archami.release.records import ReleaseRecord, linux_version, load_records

dpkg_compare = DEBIAN.compare_versions
pacman_compare = ARCH.compare_versions

RECORDS = Path(__file__).parent / "release_records"


def _records(family: str) -> dict[str, ReleaseRecord]:
    return {r.release_id: r for r in load_records(RECORDS / family)}


def test_arch_changelog_kernel_first_and_pacman_ordering() -> None:
    arch = _records("arch")
    log = changelog(arch["2013.05.16"], arch["2013.05.01"])
    assert log.news[0] == "This release has Linux 3.8.11 (was 3.7.6)."
    assert [(c.name, c.kind, c.old, c.new) for c in log.kernel] == [("linux-ec2", "upgraded", "3.7.6-1", "3.8.11-1")]
    by_name = {c.name: c for c in log.packages}
    assert by_name["openssh"].kind == "upgraded"
    assert by_name["pacman"].kind == "downgraded"  # 4.1.0-2 -> 4.1.0-1
    assert by_name["ec2-keyring"].kind == "upgraded"  # epoch 1: 2012.10 -> 2013.05
    assert by_name["netcfg"].kind == "removed"
    assert by_name["dhclient"].kind == "added"
    assert by_name["dhclient"].variants == []  # in every compared variant: no "only" note
    assert "rng-tools" not in by_name  # unchanged
    # The gpu variant is new in 2013.05.16: announced, and its nvidia packages are not "added" changes.
    assert log.variants_added == ["ebs hvm gpu x86_64"]
    assert "nvidia" not in by_name
    assert "New: ebs hvm gpu x86_64." in log.news
    assert "Packages since 2013.05.01: 4 upgraded, 2 added, 1 removed, 1 downgraded." in log.news


def test_first_release_has_no_package_changes() -> None:
    arch = _records("arch")
    log = changelog(arch["2013.05.01"], None)
    assert log.previous_id is None
    assert log.news == ["This release has Linux 3.7.6.", "First release, 5 variant(s) in 8 region(s)."]
    assert log.packages == [] and log.kernel == [] and log.variants_added == []


def test_debian_changelog_dpkg_ordering_and_abi_bump() -> None:
    deb = _records("debian")
    log = changelog(deb["2026.11.25"], deb["2026.11.18"])
    kernel = {(c.name, c.kind) for c in log.kernel}
    # Debian's versioned kernel package changes name on an ABI bump: listed as kernel changes, not packages.
    assert kernel == {
        ("linux-image-cloud-amd64", "upgraded"),
        ("linux-image-6.1.0-26-cloud-amd64", "removed"),
        ("linux-image-6.1.0-28-cloud-amd64", "added"),
    }
    by_name = {c.name: c for c in log.packages}
    assert by_name["tzdata"].kind == "downgraded"  # '~rc1' sorts before the release in dpkg's rules
    assert by_name["libc6"].kind == "upgraded"
    assert "openssh-server" not in by_name
    # Two kernels in one release (bookworm, trixie): each named with its variants.
    assert log.news[0] == (
        "This release has Linux 6.1.119 (bookworm ebs hvm x86_64); 6.12.57 (trixie ebs hvm x86_64)."
    )
    assert log.variants_added == ["trixie ebs hvm x86_64"]


def test_variant_dropped_between_releases_is_announced() -> None:
    deb = _records("debian")
    log = changelog(deb["2026.11.25.1"], deb["2026.11.25"])
    assert log.variants_removed == ["trixie ebs hvm x86_64"]
    assert log.packages == [] and log.kernel == []
    assert "Packages since 2026.11.25: no changes." in log.news


def test_changelogs_pair_each_release_with_the_previous_one_newest_first() -> None:
    logs = changelogs(load_records(RECORDS / "debian"))
    assert [(log.release_id, log.previous_id) for log in logs] == [
        ("2026.11.25.1", "2026.11.25"), ("2026.11.25", "2026.11.18"), ("2026.11.18", None),
    ]


def test_change_in_some_variants_names_them() -> None:
    arch = _records("arch")
    old, new = arch["2013.05.01"], arch["2013.05.16"]
    hvm = new.variant("ebs-hvm-x86_64")
    assert hvm is not None
    patched = hvm.model_copy(update={"packages": dict(hvm.packages, openssh="6.2p1-3")})
    current = new.model_copy(update={"variants": [patched if v is hvm else v for v in new.variants]})
    by_key = {(c.name, c.new): c for c in changelog(current, old).packages}
    assert by_key[("openssh", "6.2p1-3")].variants == ["ebs hvm x86_64"]
    assert by_key[("openssh", "6.2p1-1")].variants == [
        "ebs paravirtual x86_64", "s3 paravirtual x86_64", "ebs paravirtual i686", "s3 paravirtual i686",
    ]
    assert "ebs hvm x86_64 only" in by_key[("openssh", "6.2p1-3")].text


def test_versions_equal_under_the_rules_are_no_change() -> None:
    # pacman: '1.0' and '1.0-5' compare equal (pkgrel only counts when both sides have one).
    assert diff_packages({"a": "1.0"}, {"a": "1.0-5"}, pacman_compare) == []
    assert diff_packages({"a": "1.0"}, {"a": "1.0-5"}, dpkg_compare)[0].kind == "upgraded"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("1.0~rc1", "1.0", -1), ("1:0.9", "2.0", 1), ("2.36-9+deb12u9", "2.36-9+deb12u8", 1), ("1.0", "1.0", 0)],
)
def test_dpkg_ordering(a: str, b: str, expected: int) -> None:
    assert dpkg_compare(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("1.0rc1", "1.0", -1), ("1:0.9", "2.0", 1), ("6.6.7.arch1-1", "6.6.7.arch1-2", -1), ("1.0a", "1.0", -1)],
)
def test_pacman_ordering(a: str, b: str, expected: int) -> None:
    assert pacman_compare(a, b) == expected


@pytest.mark.parametrize(
    ("package", "uname", "expected"),
    [("6.12.1.arch1-1", "6.12.1-arch1-1", "6.12.1"), ("6.1.119-1", "6.1.0-28-cloud-amd64", "6.1.119"),
     (None, "6.1.0-28-cloud-amd64", "6.1.0"), ("1:3.7.6-1", "", "3.7.6")],
)
def test_linux_version(package: str | None, uname: str, expected: str) -> None:
    assert linux_version(package, uname) == expected
