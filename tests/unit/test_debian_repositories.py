"""A Debian definition's [[repositories]]: one flat signed source for the build, a deb822 file and the key
in the image for instances, the build's line (a host path) never left in the image."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from archami.config import load_definition
from archami.config.spec import ImageSpec
from archami.distro import debian_repos
from archami.distro.debian import DebianBackend
from archami.errors import ArchamiError

ARMOURED = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n"


def _spec(tmp_path: Path, *, instances: bool = True, mirrors: bool = True) -> ImageSpec:
    (tmp_path / "kernel.asc").write_text(ARMOURED)
    definition = tmp_path / "d.toml"
    definition.write_text(f"""
name = "t"
distro = "debian"
release = "trixie"
{'mirrors = ["https://deb.example/debian"]' if mirrors else ''}
[kernel]
stable = "linux-ec2"
[[repositories]]
name = "linux-ec2"
server = "https://kernel.example/debian"
instance_server = "https://kernel.example/stable/debian/"
key = "kernel.asc"
instances = {str(instances).lower()}
""")
    return load_definition(definition).specs[0]


def test_the_build_gets_a_signed_flat_source_whose_key_apt_can_read(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    with debian_repos.build_sources(spec) as lines:
        (line,) = lines
        key = Path(line.split("signed-by=")[1].split("]")[0])
        assert line == f"deb [signed-by={key}] https://kernel.example/debian/ ./"
        assert key.name == "archami-linux-ec2.asc" and key.read_text() == ARMOURED
        for path in (key, key.parent):  # apt verifies as its unprivileged _apt user
            assert path.stat().st_mode & stat.S_IROTH
    assert not key.parent.exists()


def test_instances_get_deb822_and_the_key_and_not_the_build_line(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    root = tmp_path / "root"
    (root / "etc/apt").mkdir(parents=True)
    with debian_repos.build_sources(spec) as lines:
        (root / "etc/apt/sources.list").write_text("deb https://deb.example/debian trixie main\n" + lines[0] + "\n")
    debian_repos.configure_for_instances(root, spec)
    assert (root / "etc/apt/sources.list").read_text() == "deb https://deb.example/debian trixie main\n"
    sources = (root / "etc/apt/sources.list.d/linux-ec2.sources").read_text()
    fields = dict(line.split(": ", 1) for line in sources.splitlines() if not line.startswith("#"))
    assert fields == {"Types": "deb", "URIs": "https://kernel.example/stable/debian/", "Suites": "./",
                      "Signed-By": "/etc/apt/keyrings/archami-linux-ec2.asc"}
    assert (root / fields["Signed-By"].lstrip("/")).read_text() == ARMOURED


def test_a_build_only_repository_leaves_nothing_in_the_image(tmp_path: Path) -> None:
    spec = _spec(tmp_path, instances=False)
    root = tmp_path / "root"
    (root / "etc/apt").mkdir(parents=True)
    debian_repos.configure_for_instances(root, spec)
    assert not (root / "etc/apt/sources.list.d").exists() and not (root / "etc/apt/keyrings").exists()


def test_repositories_without_the_archive_are_refused_before_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHAMI_DEBIAN_MIRROR", raising=False)
    with pytest.raises(ArchamiError, match="need `mirrors`"):
        DebianBackend().cache_inputs(_spec(tmp_path, mirrors=False))


def test_a_sources_list_d_file_of_build_lines_only_goes(tmp_path: Path) -> None:
    """mmdebstrap given a deb822 file and a line writes them to sources.list.d as two files."""
    spec = _spec(tmp_path)
    listing = tmp_path / "root/etc/apt/sources.list.d"
    listing.mkdir(parents=True)
    (listing / "0000debian.sources").write_text("Types: deb\nURIs: https://deb.example/debian\n")
    with debian_repos.build_sources(spec) as lines:
        (listing / "0001main.list").write_text(lines[0] + "\n")
    debian_repos.configure_for_instances(tmp_path / "root", spec)
    assert sorted(p.name for p in listing.iterdir()) == ["0000debian.sources", "linux-ec2.sources"]
