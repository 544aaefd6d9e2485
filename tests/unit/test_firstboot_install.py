"""install_into puts the agent, its settings and enabled units into a root; the agent is stdlib only."""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import pytest

from archami.config import load_definition
from archami.config.spec import ImageSpec
from archami.distro import backend_for
from archami.firstboot import install
from archami.firstboot.agent.settings import DEFAULTS, LATE_FLAG, Settings

EXAMPLES = Path(__file__).parents[2] / "examples"
AGENT_SOURCE = Path(install.__file__).parent / "agent"


def installed(tmp_path: Path, example: str) -> tuple[Path, dict[str, object]]:
    loaded = load_definition(EXAMPLES / example)
    install.install_into(tmp_path, loaded.specs[0], backend_for(loaded.definition.distro))
    return tmp_path, json.loads((tmp_path / "etc/archami/firstboot.json").read_text())


def test_debian_install(tmp_path: Path) -> None:
    root, settings = installed(tmp_path, "debian.toml")
    assert (root / "usr/lib/archami/firstboot.py").is_file()
    shipped = {p.name for p in (root / "usr/lib/archami/archami_agent").glob("*.py")}
    assert shipped == {p.name for p in AGENT_SOURCE.glob("*.py")}
    assert settings["distro"] == "debian"
    assert settings["mode"] == "archami"
    assert settings["default_user"] == "root"
    assert settings["host_key_types"] == ["ed25519", "ecdsa"]
    assert settings["pacman_keyrings"] == []
    Settings(settings)  # the agent accepts what install wrote
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == ["archami-firstboot-late.service", "archami-firstboot.service"]
    for link in wants.iterdir():
        assert str(link.readlink()) == f"/usr/lib/systemd/system/{link.name}"
        assert (root / str(link.readlink()).lstrip("/")).is_file()


def test_arch_install_orders_host_keys_and_keyrings(tmp_path: Path) -> None:
    root, settings = installed(tmp_path, "arch.toml")
    assert settings["distro"] == "arch"
    assert settings["host_key_types"] == ["ed25519", "ecdsa", "rsa"]
    assert settings["pacman_keyrings"] == ["archlinux", "ec2"]
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert "archami-firstboot-keyring.service" in {p.name for p in wants.iterdir()}
    # Arch's own host key generator would make the RSA key before sshd: the agent does it after.
    assert str((root / "etc/systemd/system/sshdgenkeys.service").readlink()) == "/dev/null"


def test_cloud_init_mode_has_no_late_phase(tmp_path: Path) -> None:
    loaded = load_definition(EXAMPLES / "arch.toml")
    spec = loaded.specs[0]
    spec = spec.model_copy(update={"firstboot": spec.firstboot.model_copy(update={"agent": "cloud-init"})})
    install.install_into(tmp_path, spec, backend_for("arch"))
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == [
        "archami-firstboot-keyring.service",
        "archami-firstboot.service",
    ]
    assert json.loads((tmp_path / "etc/archami/firstboot.json").read_text())["mode"] == "cloud-init"
    assert not (tmp_path / "etc/systemd/system/sshdgenkeys.service").is_symlink()  # cloud-init's job then


def test_units_ordering() -> None:
    units = Path(install.__file__).parent / "units"
    early = (units / install.EARLY_UNIT).read_text()
    assert "Before=sshd.service ssh.service" in early
    # Started with the network manager, not once online: it retries until the metadata address answers.
    assert "After=network.target\n" in early and "Wants=network-online.target" in early
    assert "--phase early" in early
    keyring = (units / install.KEYRING_UNIT).read_text()
    assert "After=archami-firstboot.service" in keyring and "Before=archlinux-keyring-wkd-sync.service" in keyring
    late = (units / install.LATE_UNIT).read_text()
    assert "sshd.service" in late.split("After=", 1)[1].split("\n", 1)[0]
    assert f"ConditionPathExists={LATE_FLAG}\n" in late  # the file the early phase leaves when late has work
    for text in (early, keyring, late):
        assert f"ExecStart=/usr/bin/python3 {' '.join(install.PYTHON_FLAGS)} {install.LAUNCHER} --phase" in text
        assert "WantedBy=multi-user.target" in text


def test_settings_refuse_unknown_and_mistyped() -> None:
    with pytest.raises(ValueError, match="unknown settings"):
        Settings({"bogus": 1})
    with pytest.raises(ValueError, match="must be bool"):
        Settings({"grow_root": "yes"})
    assert Settings({"deadline": 5}).deadline == 5
    assert set(json.loads(Settings({}).to_json())) == set(DEFAULTS)


@pytest.mark.parametrize("source", sorted(AGENT_SOURCE.glob("*.py")), ids=lambda p: p.name)
def test_agent_imports_only_the_standard_library(source: Path) -> None:
    tree = ast.parse(source.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: the agent's own files
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names | {"__future__"}, f"{source.name} imports {name}"


def test_files_the_package_installed_are_left_untouched(tmp_path: Path) -> None:
    """With archami-firstboot installed by pacman, the build must not rewrite its files (pacman -Qkk would
    report every one as modified); a file of another agent version is replaced."""
    loaded = load_definition(EXAMPLES / "arch.toml")
    backend = backend_for("arch")
    install.install_into(tmp_path, loaded.specs[0], backend)
    launcher = tmp_path / install.LAUNCHER.lstrip("/")
    stale = tmp_path / install.AGENT_DIR.lstrip("/") / install.AGENT_PACKAGE / "gone.py"
    stale.write_text("# from an older agent\n")
    old = 1_000_000_000
    os.utime(launcher, (old, old))
    install.install_into(tmp_path, loaded.specs[0], backend)
    assert launcher.stat().st_mtime == old
    assert not stale.exists()


def _cloud_init_spec(user: str) -> ImageSpec:
    spec = load_definition(EXAMPLES / "debian.toml").specs[0]
    firstboot = spec.firstboot.model_copy(update={"agent": "cloud-init", "default_user": user})
    return spec.model_copy(update={"firstboot": firstboot})


@pytest.mark.parametrize("user", ["root", "admin"])
def test_cloud_init_gives_the_key_to_the_definitions_user(tmp_path: Path, user: str) -> None:
    yaml = pytest.importorskip("yaml")  # cloud-init's own loader
    spec = _cloud_init_spec(user)
    install.install_into(tmp_path, spec, backend_for("debian"))
    config = yaml.safe_load((tmp_path / install.CLOUD_INIT_DROP_IN.lstrip("/")).read_text())
    if user == "root":  # keys for root as they are, and no `debian` user made
        assert config == {"disable_root": False, "users": []}
    else:
        assert config["system_info"]["default_user"]["name"] == user and "disable_root" not in config


def test_archami_agent_leaves_cloud_init_unconfigured(tmp_path: Path) -> None:
    installed(tmp_path, "debian.toml")
    assert not (tmp_path / install.CLOUD_INIT_DROP_IN.lstrip("/")).exists()
