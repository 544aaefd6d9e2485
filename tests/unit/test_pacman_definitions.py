"""The ec2 repository's package definitions (packages/*/package.toml) and how their files are staged."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from archami import __version__
from archami.config import load_definition as load_image_definition
from archami.distro import backend_for
from archami.errors import ArchamiError, ConfigError
from archami.firstboot.agent.settings import SETTINGS_PATH
from archami.firstboot.install import WANTS_DIR, install_into
from archami.pacman.contents import StagingContext, stage
from archami.pacman.definitions import load_definition, load_definitions

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = REPO_ROOT / "packages"


def files_under(root: Path) -> dict[str, bytes]:
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():  # enable links point into the image's /, not the test's
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def test_project_definitions_load() -> None:
    definitions = {d.pkgname: d for d in load_definitions(PACKAGES)}
    assert set(definitions) == {"archami-firstboot", "ec2-keyring", "ec2-pacman-mirrors"}
    assert definitions["archami-firstboot"].version == f"{__version__}-1"  # archami's own version
    assert definitions["ec2-keyring"].install_script() is not None
    assert "pacman-key --populate ec2" in (definitions["ec2-keyring"].install_script() or "")
    for definition in definitions.values():
        assert len(definition.sha256) == 64


def write_definition(tmp: Path, name: str, body: str) -> Path:
    directory = tmp / name
    directory.mkdir(parents=True)
    (directory / "package.toml").write_text(body)
    return directory


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('pkgname = "x"\npkgver = "1"\npkgdesc = "d"\n[contents]\nkind = "files"\ncolour = 1\n', "contents.colour"),
        ('pkgname = "x"\npkgver = "1"\npkgdesc = "d"\n[contents]\nkind = "nonsense"\n', "contents.kind"),
        ('pkgname = "x"\npkgdesc = "d"\n[contents]\nkind = "files"\n', "pkgver"),
        ('pkgname = "y"\npkgver = "1"\npkgdesc = "d"\n[contents]\nkind = "files"\n', "pkgname"),
    ],
)
def test_bad_definitions_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    directory = write_definition(tmp_path, "x", body)
    with pytest.raises(ConfigError) as info:
        load_definition(directory)
    assert info.value.key == key


def test_invalid_version_refused(tmp_path: Path) -> None:
    body = 'pkgname = "x"\npkgver = "1-2"\npkgdesc = "d"\n[contents]\nkind = "files"\n'
    directory = write_definition(tmp_path, "x", body)
    with pytest.raises(ConfigError, match="pkgver"):
        load_definition(directory)


def test_files_kind(tmp_path: Path) -> None:
    directory = write_definition(
        tmp_path, "x",
        'pkgname = "x"\npkgver = "1"\npkgdesc = "d"\n[contents]\nkind = "files"\n'
        '[[contents.files]]\nsource = "tool.sh"\ndest = "/usr/bin/tool"\nmode = "0755"\n',
    )  # fmt: skip
    (directory / "tool.sh").write_text("#!/bin/sh\n")
    root = tmp_path / "root"
    root.mkdir()
    stage(load_definition(directory), root, StagingContext())
    assert (root / "usr/bin/tool").stat().st_mode & 0o7777 == 0o755
    (directory / "tool.sh").unlink()
    with pytest.raises(ArchamiError, match="missing"):
        stage(load_definition(directory), tmp_path / "root2", StagingContext())


def test_mirrorlists_from_data_and_from_mirrors(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    shutil.copytree(PACKAGES / "ec2-pacman-mirrors", packages / "ec2-pacman-mirrors")
    lists = packages / "ec2-pacman-mirrors/mirrorlists"
    (lists / "eu-west-1.mirrorlist").write_text("Server = http://127.0.0.1:1/$repo/os/$arch\n")
    definition = load_definition(packages / "ec2-pacman-mirrors")
    with pytest.raises(ArchamiError, match=r"global\.mirrorlist"):
        stage(definition, tmp_path / "r0", StagingContext())
    root = tmp_path / "r1"
    stage(definition, root, StagingContext(mirrors=["http://127.0.0.2/$repo/os/$arch"]))
    staged = files_under(root / "usr/share/ec2-pacman-mirrors")
    assert set(staged) == {"eu-west-1.mirrorlist", "global.mirrorlist"}
    assert b"Server = http://127.0.0.2/$repo/os/$arch\n" in staged["global.mirrorlist"]
    (lists / "not-a-region.mirrorlist").write_text("Server = http://127.0.0.1/\n")
    with pytest.raises(ArchamiError, match="not an AWS region"):
        stage(definition, tmp_path / "r2", StagingContext(mirrors=["http://127.0.0.2/"]))
    (lists / "not-a-region.mirrorlist").unlink()
    (lists / "us-east-1.mirrorlist").write_text("# nothing\n")
    with pytest.raises(ArchamiError, match="Server"):
        stage(definition, tmp_path / "r3", StagingContext(mirrors=["http://127.0.0.2/"]))


def test_firstboot_package_holds_what_install_into_installs(tmp_path: Path) -> None:
    """The packaged agent must be the files an image gets, minus the image's settings and enable links."""
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    stage(load_definition(PACKAGES / "archami-firstboot"), packaged, StagingContext())
    image = tmp_path / "image"
    loaded = load_image_definition(REPO_ROOT / "examples/arch.toml")
    install_into(image, loaded.specs[0], backend_for(loaded.definition.distro))
    image_only = (SETTINGS_PATH.lstrip("/"), WANTS_DIR.lstrip("/"))
    installed = {path: data for path, data in files_under(image).items() if not path.startswith(image_only)}
    assert files_under(packaged) == installed
    assert all(os.stat(d).st_mode & 0o777 == 0o755 for d, _, _ in os.walk(packaged) if Path(d) != packaged)
