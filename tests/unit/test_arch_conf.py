"""pacman.conf, mirrorlist and mkinitcpio.conf generation: pure functions, no root, no tools."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from archami.config import load_definition, parse_definition
from archami.config.schema import Repository
from archami.distro.arch import kernel_version, mirrorlist, mkinitcpio_conf, pacman_conf
from archami.distro.arch_conf import DEFAULT_SIGLEVEL, MIRROR_ENV, mirrors_for
from archami.distro.arch_pacman import installed_packages, scriptlet_failures
from archami.errors import ArchamiError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MIRROR = "https://mirror.example/archlinux/$repo/os/$arch"


def _sections(text: str) -> configparser.ConfigParser:
    """pacman.conf is INI-like; `Server` repeats, so keep the last value and check repeats by text."""
    parser = configparser.ConfigParser(allow_no_value=True, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def _repo(name: str, first: bool = False, siglevel: str = "Required") -> Repository:
    return Repository(name=name, server=f"https://{name}.example/$arch", siglevel=siglevel, first=first)


def test_build_conf_uses_archamis_own_paths_and_required_signatures(tmp_path: Path) -> None:
    text = pacman_conf(
        architecture="x86_64",
        mirrors=[MIRROR],
        cache_dir=tmp_path / "cache",
        db_path=tmp_path / "root/var/lib/pacman",
        gpg_dir=tmp_path / "gnupg",
        log_file=tmp_path / "pacman.log",
    )
    options = _sections(text)["options"]
    assert options["DBPath"] == f"{tmp_path}/root/var/lib/pacman/"
    assert options["GPGDir"] == f"{tmp_path}/gnupg/"
    assert options["CacheDir"] == f"{tmp_path}/cache/"
    assert options["LogFile"] == f"{tmp_path}/pacman.log"
    assert options["Architecture"] == "x86_64"
    assert options["SigLevel"] == DEFAULT_SIGLEVEL == "Required DatabaseOptional"
    assert "/etc/pacman.d/gnupg" not in text  # never the host's keyring


def test_first_repository_precedes_distro_repositories_and_others_follow() -> None:
    text = pacman_conf(
        architecture="x86_64",
        mirrors=[MIRROR, "https://second.example/$repo/os/$arch"],
        repositories=[_repo("late"), _repo("ec2", first=True)],
    )
    order = [line for line in text.splitlines() if line.startswith("[")]
    assert order == ["[options]", "[ec2]", "[core]", "[extra]", "[late]"]
    core = text.split("[core]")[1].split("[extra]")[0]
    assert core.split() == ["Server", "=", MIRROR, "Server", "=", "https://second.example/$repo/os/$arch"]
    ec2 = text.split("[ec2]")[1].split("[core]")[0]
    assert "SigLevel = Required" in ec2 and "Server = https://ec2.example/$arch" in ec2


def test_instance_conf_includes_the_mirrorlist_and_no_build_paths() -> None:
    text = pacman_conf(
        architecture="x86_64", repositories=[_repo("ec2", True)], mirrorlist_path="/etc/pacman.d/mirrorlist"
    )
    parsed = _sections(text)
    for section in ("core", "extra"):
        assert parsed[section]["Include"] == "/etc/pacman.d/mirrorlist"
    for key in ("DBPath", "GPGDir", "CacheDir", "LogFile", "Server"):
        assert key not in parsed["options"]
    assert "Server" not in text.split("[core]")[1]


@pytest.mark.parametrize("weak", ["Never", "Optional", "PackageOptional", "TrustAll", "Required DatabaseNever"])
def test_weaker_repository_siglevel_is_refused(weak: str) -> None:
    with pytest.raises(ArchamiError, match="weaker"):
        pacman_conf(architecture="x86_64", mirrors=[MIRROR], repositories=[_repo("ec2", siglevel=weak)])


@pytest.mark.parametrize("strict", ["Required", "Required TrustedOnly", "DatabaseRequired", "PackageRequired"])
def test_stricter_repository_siglevel_is_kept(strict: str) -> None:
    text = pacman_conf(architecture="x86_64", mirrors=[MIRROR], repositories=[_repo("ec2", siglevel=strict)])
    assert f"[ec2]\nSigLevel = {strict}\n" in text


def test_unknown_siglevel_token_and_duplicate_names_are_refused() -> None:
    with pytest.raises(ArchamiError, match="unknown SigLevel"):
        pacman_conf(architecture="x86_64", mirrors=[MIRROR], repositories=[_repo("ec2", siglevel="Requird")])
    with pytest.raises(ArchamiError, match="used twice: core"):
        pacman_conf(architecture="x86_64", mirrors=[MIRROR], repositories=[_repo("core")])


def test_no_mirror_is_a_clear_error() -> None:
    with pytest.raises(ArchamiError, match=f"no Arch mirror configured: set {MIRROR_ENV}"):
        pacman_conf(architecture="x86_64")


def test_mirrors_come_from_the_definition_else_the_environment() -> None:
    loaded = load_definition(EXAMPLES / "arch.toml")
    assert mirrors_for(loaded.definition.mirrors, {MIRROR_ENV: f"{MIRROR}, https://b.example/$repo/os/$arch"}) == [
        MIRROR, "https://b.example/$repo/os/$arch",
    ]
    assert mirrors_for(loaded.definition.mirrors, {}) == []
    own = parse_definition(
        'name = "a"\ndistro = "arch"\nrelease = "rolling"\nmirrors = ["https://own.example/$repo/os/$arch"]\n'
        '[kernel]\nstable = "linux"\n'
    )
    assert mirrors_for(own.mirrors, {MIRROR_ENV: MIRROR}) == ["https://own.example/$repo/os/$arch"]


def test_example_arch_definition_renders_ec2_first_with_its_key() -> None:
    definition = load_definition(EXAMPLES / "arch.toml").definition
    text = pacman_conf(architecture="x86_64", mirrors=[MIRROR], repositories=definition.repositories)
    assert text.index("[ec2]") < text.index("[core]")


def test_mirrorlist_keeps_order() -> None:
    text = mirrorlist(["https://a/$repo/os/$arch", "https://b/$repo/os/$arch"], header="ranked\nfor us-east-1")
    assert [line for line in text.splitlines() if line.startswith("Server")] == [
        "Server = https://a/$repo/os/$arch", "Server = https://b/$repo/os/$arch",
    ]
    assert "# for us-east-1" in text


def test_mkinitcpio_conf_lists_modules_without_autodetect() -> None:
    text = mkinitcpio_conf(["nvme", "xen-blkfront", "virtio_pci"])
    assert "MODULES=(nvme xen-blkfront virtio_pci)\n" in text
    hooks = next(line for line in text.splitlines() if line.startswith("HOOKS="))
    assert "autodetect" not in hooks and "block" in hooks and "filesystems" in hooks
    with pytest.raises(ArchamiError):
        mkinitcpio_conf(["nvme"], hooks=["base", "autodetect"])
    with pytest.raises(ArchamiError):
        mkinitcpio_conf(["nvme; rm -rf /"])


def test_installed_packages_reads_the_local_database(tmp_path: Path) -> None:
    local = tmp_path / "var/lib/pacman/local"
    for name, version in (("linux", "6.12.1.arch1-1"), ("base", "3-2")):
        entry = local / f"{name}-{version}"
        entry.mkdir(parents=True)
        (entry / "desc").write_text(
            f"%NAME%\n{name}\n\n%VERSION%\n{version}\n\n%DESC%\nx\n\n%ARCH%\nx86_64\n\n%DEPENDS%\na\nb\n\n"
        )
    (local / "ALPM_DB_VERSION").write_text("9\n")
    packages = installed_packages(tmp_path)
    assert [(p.name, p.version, p.architecture) for p in packages] == [
        ("base", "3-2", "x86_64"), ("linux", "6.12.1.arch1-1", "x86_64"),
    ]


def test_kernel_version_picks_the_kernel_package_and_refuses_ambiguity(tmp_path: Path) -> None:
    modules = tmp_path / "usr/lib/modules"
    for version, pkgbase in (("6.12.1-arch1-1", "linux"), ("6.6.60-1-lts", "linux-lts")):
        (modules / version).mkdir(parents=True)
        (modules / version / "vmlinuz").write_bytes(b"x")
        (modules / version / "pkgbase").write_text(pkgbase + "\n")
    (modules / "extramodules-6.12-arch").mkdir()  # nvidia's: no kernel in it
    assert kernel_version(tmp_path, "linux-lts") == "6.6.60-1-lts"
    with pytest.raises(ArchamiError, match="several kernels"):
        kernel_version(tmp_path)
    with pytest.raises(ArchamiError, match="no kernel"):
        kernel_version(tmp_path / "nothing")


def test_scriptlet_failures_are_found_in_output() -> None:
    output = (
        "(1/2) installing shell-dash\n(2/2) installing hello\n"
        "error: command failed to execute correctly\nwarning: something harmless\n"
    )
    assert scriptlet_failures(output) == ["error: command failed to execute correctly"]
    assert scriptlet_failures("(1/1) installing a\n") == []
