"""ArchBackend's pure parts: the root cache key and the errors a user sees first."""

from __future__ import annotations

from pathlib import Path

import pytest

from archami.config import Definition, expand, parse_definition
from archami.distro.arch import ArchBackend, write_instance_pacman_config
from archami.errors import ArchamiError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _definition(
    tmp_path: Path, key_text: str = "key one", mirrors: str = '["https://m.example/$repo/os/$arch"]'
) -> Definition:
    key = tmp_path / "ec2.asc"
    key.write_text(key_text)
    return parse_definition(
        f'name = "a"\ndistro = "arch"\nrelease = "rolling"\nmirrors = {mirrors}\n'
        '[kernel]\nstable = "linux-lts"\n[packages]\nadd = ["openssh", "base"]\nremove = ["sysvinit"]\n'
        f'[[repositories]]\nname = "ec2"\nserver = "https://r.example/$arch"\nkey = "{key}"\nfirst = true\n'
    )


def test_cache_inputs_name_everything_that_shapes_the_root(tmp_path: Path) -> None:
    definition = _definition(tmp_path)
    (spec,) = expand(definition)
    inputs = ArchBackend().cache_inputs(spec)
    # What the steps need (openssh, python for the agent) is added by the backend.
    assert inputs["packages"] == ["base", "linux-lts", "openssh", "python"]
    assert inputs["removed"] == ["sysvinit"]
    assert inputs["mirrors"] == ["https://m.example/$repo/os/$arch"]
    assert "date" not in inputs  # freshness is the root cache's age limit, the same for every distro
    keys = inputs["keys"]
    assert isinstance(keys, dict)
    assert str(tmp_path / "ec2.asc") in keys and "/usr/share/keyrings/archlinux.gpg" in keys
    changed = _definition(tmp_path, key_text="key two")
    assert ArchBackend().cache_inputs(expand(changed)[0])["keys"] != keys


def test_cache_inputs_refuse_a_build_without_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHAMI_ARCH_MIRROR", raising=False)
    definition = _definition(tmp_path, mirrors="[]")
    (spec,) = expand(definition)
    with pytest.raises(ArchamiError, match="no Arch mirror configured: set ARCHAMI_ARCH_MIRROR"):
        ArchBackend().cache_inputs(spec)
    monkeypatch.setenv("ARCHAMI_ARCH_MIRROR", "https://env.example/$repo/os/$arch")
    assert ArchBackend().cache_inputs(spec)["mirrors"] == ["https://env.example/$repo/os/$arch"]


def test_missing_repository_key_is_one_clear_error(tmp_path: Path) -> None:
    definition = _definition(tmp_path)
    (tmp_path / "ec2.asc").unlink()
    (spec,) = expand(definition)
    with pytest.raises(ArchamiError, match=r"repository key .* not found"):
        ArchBackend().cache_inputs(spec)


def test_each_architecture_uses_its_distributions_keyring(tmp_path: Path) -> None:
    definition = _definition(tmp_path)
    (spec,) = expand(definition)
    assert ArchBackend().keyrings_for(spec) == ("archlinux",)
    i686 = spec.model_copy(update={"variant": spec.variant.model_copy(update={"architecture": "i686"})})
    assert ArchBackend().keyrings_for(i686) == ("archlinux32",)
    assert ArchBackend(keyrings=("mine",)).keyrings_for(i686) == ("mine",)
    # Debian ships no archlinux32 keyring: the error says so instead of a failed signature check later.
    with pytest.raises(ArchamiError, match=r"archlinux32\.gpg not found: install the archlinux32 keyring"):
        ArchBackend().cache_inputs(i686)


# The shape of the pacman package's own /etc/pacman.conf on Arch (its [options] and two repositories).
PACKAGE_PACMAN_CONF = """\
[options]
HoldPkg     = pacman glibc
Architecture = auto
CheckSpace
ParallelDownloads = 5
DownloadUser = alpm
SigLevel    = Required DatabaseOptional
LocalFileSigLevel = Optional

#[core-testing]
#Include = /etc/pacman.d/mirrorlist

[core]
Include = /etc/pacman.d/mirrorlist

[extra]
Include = /etc/pacman.d/mirrorlist
"""


def _image_with_pacman_conf(root: Path) -> Path:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/pacman.conf").write_text(PACKAGE_PACMAN_CONF)
    return root


def test_instance_pacman_conf_edits_only_the_repository_sections(tmp_path: Path) -> None:
    text = (EXAMPLES / "arch.toml").read_text().replace(
        "instances = false\n# instance_server = \"https://<your-bucket>.s3.<region>.amazonaws.com/$repo/$arch\"",
        'instance_server = "https://repo.invalid/$repo/$arch"',
    )
    spec = expand(parse_definition(text))[0]
    root = _image_with_pacman_conf(tmp_path)
    write_instance_pacman_config(root, spec, {"ARCHAMI_ARCH_MIRROR": "http://127.0.0.1:9/$repo"})
    conf = (root / "etc/pacman.conf").read_text()
    assert "Server = https://repo.invalid/$repo/$arch" in conf and "file:///var/lib/archami/repo" not in conf
    assert conf.index("[ec2]") < conf.index("[core]") < conf.index("[extra]")
    # Everything else is the package's own file, byte for byte.
    assert conf.replace(conf[conf.index("# Added by archami."):conf.index("[core]")], "") == PACKAGE_PACMAN_CONF


def test_a_build_only_repository_is_left_out_and_a_file_url_is_refused(tmp_path: Path) -> None:
    shipped = expand(parse_definition((EXAMPLES / "arch.toml").read_text()))[0]
    root = _image_with_pacman_conf(tmp_path)
    write_instance_pacman_config(root, shipped, {})  # the example: `instances = false`
    assert (root / "etc/pacman.conf").read_text() == PACKAGE_PACMAN_CONF
    reachable = (EXAMPLES / "arch.toml").read_text().replace("instances = false\n", "")
    with pytest.raises(ArchamiError, match="instances cannot reach file:///var/lib/archami/repo"):
        write_instance_pacman_config(root, expand(parse_definition(reachable))[0], {})
    (root / "etc/pacman.conf").unlink()
    with pytest.raises(ArchamiError, match="pacman package must be installed"):
        write_instance_pacman_config(root, shipped, {})
