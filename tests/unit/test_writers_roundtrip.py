"""Properties of every input road: random TOML documents and random strings in every field never produce a
traceback (only a ConfigError), whatever the schema accepts is written by every writer into a file that parses
back to the same values, and the writers themselves refuse what they cannot write (pacman.conf injection)."""

from __future__ import annotations

import contextlib
import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import conf_parsers as parse
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archami.config.load import parse_and_expand, parse_definition
from archami.config.schema import Repository
from archami.config.spec import ImageSpec
from archami.distro.arch import ArchBackend
from archami.distro.arch_conf import ARCH_REPOSITORIES, mirrorlist, mkinitcpio_conf, pacman_conf
from archami.distro.debian import DebianBackend, initramfs_modules_text
from archami.errors import ArchamiError, ConfigError
from archami.firstboot.agent.settings import Settings
from archami.firstboot.install import agent_settings
from archami.image import grub, steps
from archami.image.layout import kernel_cmdline, plan_layout
from archami.image.rootfs import make_symlink, write_file

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DEBIAN: dict[str, Any] = {
    "name": "t", "description": "Debian for EC2", "distro": "debian", "release": "bookworm", "hostname": "box",
    "timezone": "UTC", "locale": "C.UTF-8",
    "kernel": {"stable": "linux-image-cloud-amd64", "lts": "linux-image-amd64", "cmdline": ["quiet"],
               "initramfs_modules": ["nvme"]},
    "packages": {"add": ["sudo"], "remove": ["nano"]},
    "services": {"enable": ["ssh.service", "systemd-resolved.service"], "disable": ["rsync.service"],
                 "deferred": ["systemd-resolved.service"]},
    "files": [{"path": "/etc/motd", "content": "hello", "mode": "0644"}, {"path": "/usr/bin/x", "symlink": "y"}],
    "ssh": {"permit_root_login": "no", "host_key_types": ["ed25519"], "after_network": True},
    "network": {"stack": "networkd", "dhcp_options": ["routers"]},
    "firstboot": {"default_user": "admin", "grow_root": True, "agent": "archami"},
    "mirrors": ["https://deb.example/debian"],
    "disk": {"size": "2GiB", "esp_size": "64MiB"},
    "flavours": {"big": {"description": "large", "hostname": "big", "instance_type": "m5.large",
                         "kernel": {"cmdline": ["mitigations=off"]}}},
    "matrix": {"release": ["bookworm", "trixie"], "flavour": ["default", "big"], "kernel": ["stable", "lts"],
               "exclude": [{"release": "trixie", "kernel": "lts"}]},
}
ARCH: dict[str, Any] = {
    "name": "arch", "distro": "arch", "release": "rolling", "kernel": {"stable": "linux"},
    "mirrors": ["https://arch.example/$repo/os/$arch"],
    "repositories": [{"name": "ec2", "server": "file:///var/lib/archami/repo/$repo/$arch", "siglevel": "Required",
                      "key": "packages/ec2.gpg", "first": True},
                     {"name": "extra2", "server": "https://r.example/$repo", "instance_server": "https://s.example/$repo"}],
}
FIELDS: list[tuple[dict[str, Any], tuple[str | int, ...]]] = [
    (DEBIAN, path) for path in [
        ("name",), ("description",), ("release",), ("hostname",), ("timezone",), ("locale",), ("package_manager",),
        ("architecture",), ("init",), ("kernel", "stable"), ("kernel", "lts"), ("kernel", "cmdline", 0),
        ("kernel", "initramfs_modules", 0), ("packages", "add", 0), ("packages", "remove", 0),
        ("services", "enable", 0), ("services", "disable", 0), ("services", "deferred", 0),
        ("files", 0, "path"), ("files", 0, "content"), ("files", 0, "mode"), ("files", 1, "symlink"),
        ("ssh", "permit_root_login"), ("ssh", "host_key_types", 0), ("ssh", "after_network"), ("network", "stack"),
        ("network", "dhcp_options", 0), ("firstboot", "default_user"), ("firstboot", "grow_root"),
        ("mirrors", 0), ("disk", "size"), ("disk", "esp_size"), ("flavours", "big", "description"),
        ("flavours", "big", "hostname"), ("flavours", "big", "instance_type"),
        ("flavours", "big", "kernel", "cmdline", 0),
        ("matrix", "release", 0), ("matrix", "flavour", 1), ("matrix", "exclude", 0, "release"),
    ]
] + [
    (ARCH, path) for path in [
        ("repositories", 0, "name"), ("repositories", 0, "server"), ("repositories", 0, "siglevel"),
        ("repositories", 0, "key"), ("repositories", 1, "instance_server"), ("repositories", 1, "name"),
        ("mirrors", 0), ("kernel", "stable"),
    ]
]

# Characters that break configuration files: line breaks, section and comment signs, quotes, shell.
NASTY = "\n\r\t\0 []=#'\"\\$;{}|&<>`*?/.-_@:,+%~\x0b\x1b\u0085\u2028é"
TOKENS = st.from_regex(r"[a-z0-9][a-z0-9._/:=-]{0,20}", fullmatch=True)
STRINGS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=NASTY + "abcz019", max_size=30),
    TOKENS,
    st.builds(lambda a, b: a + b, TOKENS, st.text(alphabet=NASTY, min_size=1, max_size=3)),
)
VALUES = st.one_of(
    STRINGS, STRINGS, STRINGS,
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.booleans(),
    st.lists(STRINGS, max_size=3), st.dictionaries(TOKENS, STRINGS, max_size=2),
)


# -- a TOML writer for generated documents ------------------------------------------------------------------


def toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(document: dict[str, Any]) -> str:
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in document.items())


def with_value(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(base)
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return document


# -- every writer, and what it must read back as -------------------------------------------------------------


def check_writers(spec: ImageSpec) -> None:
    assert parse.key_values(steps.hostname_text(spec.hostname)) == [(spec.hostname, "")]
    assert parse.fstab(steps.hosts_text(spec.hostname))[1] == ["127.0.1.1", spec.hostname]
    assert parse.key_values(steps.locale_text(spec.locale)) == [("LANG", spec.locale)]
    sshd = dict(parse.key_values(steps.sshd_config(spec.ssh), " "))
    assert sshd["PermitRootLogin"] == spec.ssh.permit_root_login and sshd["PasswordAuthentication"] == "no"
    network = parse.ini(steps.networkd_config(spec.network.dhcp_options))
    codes = dict(network["DHCPv4"])["RequestOptions"].split()
    assert codes == [str(steps.DHCP_OPTION_CODES[o]) for o in spec.network.dhcp_options]
    request = steps.dhclient_config(spec.network.dhcp_options).split("request ", 1)[1].split(";")[0]
    assert request.split(", ") == list(spec.network.dhcp_options)

    layout = plan_layout(spec.disk.size, virtualization=spec.variant.virtualization, esp_size=spec.disk.esp_size,
                         seed="s")
    assert layout.root.fs_uuid is not None
    esp = layout.part("esp").fs_uuid if layout.has("esp") else None
    rows = parse.fstab(steps.fstab_text(layout.root.fs_uuid, spec.disk.filesystem, esp))
    assert rows[0][:3] == [f"UUID={layout.root.fs_uuid}", "/", spec.disk.filesystem]

    cmdline = kernel_cmdline(layout, list(spec.kernel.cmdline), spec.variant.virtualization)
    title = spec.description or spec.variant.name
    boot = grub.BootFiles("/vmlinuz", "/initrd.img")
    assert parse.grub_menuentry(grub.grub_cfg(title, boot, layout.root.fs_uuid, cmdline)) == (title, cmdline.split())
    assert parse.menu_lst(grub.menu_lst(title, boot, cmdline)) == (title.strip() or "archami", cmdline.split())
    assert all(arg in cmdline.split() for arg in spec.kernel.cmdline)

    modules = list(spec.kernel.initramfs_modules)
    assert parse.bash_array(mkinitcpio_conf(modules), "MODULES") == modules
    assert [line for line in initramfs_modules_text(modules).split("\n")[1:] if line] == modules

    backend = ArchBackend() if spec.distro == "arch" else DebianBackend()
    settings_ = agent_settings(spec, backend)
    assert parse.json_equal(settings_.to_json(), {"default_user": spec.firstboot.default_user,
                                                  "grow_root": spec.firstboot.grow_root})
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for file in spec.files:
            if file.symlink is not None:
                assert make_symlink(root, file.path, file.symlink).readlink() == Path(file.symlink)
            else:
                written = write_file(root, file.path, file.content, int(file.mode, 8))
                assert written.read_bytes() == file.content.encode() and written.is_relative_to(root)
    if spec.distro == "arch":
        check_pacman_conf(spec)


def check_pacman_conf(spec: ImageSpec) -> None:
    mirrors = list(spec.mirrors)
    sections = parse.pacman_conf(pacman_conf(architecture=spec.architecture, mirrors=mirrors,
                                             repositories=spec.repositories))
    first = [r.name for r in spec.repositories if r.first]
    rest = [r.name for r in spec.repositories if not r.first]
    assert [name for name, _ in sections] == ["options", *first, *ARCH_REPOSITORIES, *rest]
    options = dict(sections[0][1])
    assert options["SigLevel"] == "Required DatabaseOptional" and options["Architecture"] == spec.architecture
    by_name = dict(sections)
    for repository in spec.repositories:
        assert by_name[repository.name] == [("SigLevel", repository.siglevel), ("Server", repository.server)]
    for name in ARCH_REPOSITORIES:
        assert by_name[name] == [("Server", url) for url in mirrors]
    listed = parse.pacman_conf("[x]\n" + mirrorlist(mirrors, header="a\nb\n[options]"))
    assert listed == [("x", [("Server", url) for url in mirrors])]


def test_the_bases_are_valid_and_pass_every_writer() -> None:
    for base in (DEBIAN, ARCH):
        _definition, specs = parse_and_expand(to_toml(base))
        assert specs
        for spec in specs:
            check_writers(spec)


# -- properties ---------------------------------------------------------------------------------------------


@FAST
@given(st.text(max_size=300))
def test_random_text_is_never_a_traceback(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_and_expand(text)


TOML_KEYS = st.one_of(st.sampled_from([*sorted(DEBIAN), "size", "enable", "add", "path", "flavor", "x"]), TOKENS)
DOCUMENTS = st.recursive(
    VALUES,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(TOML_KEYS, children, max_size=4)),
    max_leaves=12,
)


@FAST
@given(st.dictionaries(TOML_KEYS, DOCUMENTS, max_size=8))
def test_random_toml_documents_are_never_a_traceback(document: dict[str, Any]) -> None:
    try:
        _definition, specs = parse_and_expand(to_toml(document))
    except ConfigError:
        return
    for spec in specs:
        check_writers(spec)


# Valid alternatives per kind of field, so that generated values are accepted often enough for the writers to
# see them (and their mutations are near misses).
URLS = ["https://h.example:8443/p/$repo/$arch", "http://[::1]/x", "file:///srv/repo", "http://10.1.2.3/debian",
        "https://$region.deb.example/debian", "https://a.example/~user/%20x"]
UNITS = ["foo@bar.service", "getty@tty1.service", "x.socket", "a:b-c_d.timer", "dev-x\\x2dy.device"]
PLAUSIBLE: dict[str, list[str]] = {
    "hostname": ["a-b.example", "UPPER.lower", "x", "a1.b2.c3", "ip-10-0-0-1.ec2.internal"],
    "timezone": ["Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC", "Asia/Kolkata"],
    "locale": ["en_US.UTF-8", "de_DE.utf8", "sr_RS@latin", "C", "POSIX", "en_GB"],
    "mirrors": URLS, "server": URLS, "instance_server": URLS,
    "enable": UNITS, "disable": UNITS, "deferred": UNITS,
    "cmdline": ["console=ttyS0,115200", "a=b=c", "nvme_core.io_timeout=4294967295", "x", "ip=::::eth0:dhcp"],
    "initramfs_modules": ["xen-blkfront", "nvme_core", "virtio_pci", "e1000e"],
    "add": ["g++", "lib32-gcc-libs", "python3.11", "xz-utils"], "remove": ["g++", "nano", "vim.tiny"],
    "stable": ["linux-lts", "linux-image-6.1.0-amd64"], "lts": ["linux-lts", "linux-image-amd64"],
    "mode": ["0755", "644", "1777", "04755"], "size": ["4GiB", "1.5GiB", "1024M", "3000MB", "536870912"],
    "esp_size": ["33MiB", "128M", "100MB"], "release": ["trixie", "bookworm", "sid", "stable"],
    "siglevel": ["Required TrustedOnly", "PackageRequired DatabaseOptional", "Required", "Optional"],
    "name": ["ec2", "my-repo", "x+y", "ab", "a" * 63], "path": ["/etc/x", "/opt/über", "/etc/a b", "/a/./b"],
    "symlink": ["../rel", "/abs", "a b"], "description": ["It's 'quoted' \\ here", "émoji ✓", " spaced "],
    "default_user": ["ec2-user", "_svc", "a" * 32], "instance_type": ["g4dn.xlarge", "u-6tb1.metal"],
    "key": ["keys/a.gpg", "/abs/k.asc"], "content": ["a\nb", "[options]\nSigLevel = Never"],
    "permit_root_login": ["no", "prohibit-password", "yes"], "stack": ["dhclient", "networkd"],
    "dhcp_options": ["ntp-servers", "fqdn"], "host_key_types": ["rsa", "ecdsa"], "flavour": ["default", "big"],
}


def _mutate(text: str, position: int, char: str, mode: int) -> str:
    position %= len(text) + 1
    if mode == 0:
        return text[:position] + char + text[position:]
    if mode == 1:
        return text[:position] + char + text[position + 1 :]
    return text + char


def field_values(base: dict[str, Any], path: tuple[str | int, ...]) -> st.SearchStrategy[Any]:
    node: Any = base
    for part in path:
        node = node[part] if isinstance(node, list) or part in node else None
    kind = next(str(part) for part in reversed(path) if isinstance(part, str))
    seeds = ([node] if isinstance(node, str) else []) + PLAUSIBLE.get(kind, ["x"])
    mutated = st.builds(_mutate, st.sampled_from(seeds), st.integers(0, 60), st.sampled_from(NASTY + "aZ9"),
                        st.integers(0, 2))
    choices = [VALUES, st.sampled_from(seeds), mutated, mutated]  # a quarter each (one_of would flatten VALUES)
    return st.integers(0, len(choices) - 1).flatmap(lambda k: choices[k])


@FAST
@given(st.data())
def test_any_value_in_any_field_is_refused_clearly_or_written_faithfully(data: st.DataObject) -> None:
    base, path = data.draw(st.sampled_from(FIELDS))
    value = data.draw(field_values(base, path))
    text = to_toml(with_value(base, path, value))
    try:
        _definition, specs = parse_and_expand(text)
    except ConfigError as exc:
        assert exc.reason and "\n" not in str(exc.key)
        return
    for spec in specs:
        check_writers(spec)


@FAST
@given(st.text(alphabet=NASTY + "ab", max_size=12), st.text(alphabet=NASTY + "ab:/", max_size=24),
       st.text(alphabet=NASTY + "Required", max_size=24))
def test_the_pacman_conf_writer_refuses_or_round_trips_on_its_own(name: str, server: str, siglevel: str) -> None:
    """Without the schema in front of it (a Repository made any other way), pacman_conf still never writes a
    file that reads back differently."""
    repository = Repository.model_construct(name=name, server=server, siglevel=siglevel, first=False)
    try:
        text = pacman_conf(architecture="x86_64", mirrors=["https://m.example/$repo"], repositories=[repository])
    except ArchamiError:
        return
    sections = dict(parse.pacman_conf(text))
    assert list(sections) == ["options", "core", "extra", name]
    assert sections[name] == [("SigLevel", " ".join(siglevel.split())), ("Server", server)]


@FAST
@given(STRINGS, STRINGS)
def test_grub_writers_refuse_or_round_trip_on_their_own(title: str, argument: str) -> None:
    boot = grub.BootFiles("/vmlinuz", None)
    try:
        text = grub.grub_cfg(title, boot, "0123-abcd", f"root=UUID=0123-abcd ro {argument}")
    except ArchamiError:
        return
    assert parse.grub_menuentry(text) == (title, ["root=UUID=0123-abcd", "ro", *argument.split()])


@FAST
@given(STRINGS)
def test_line_writers_refuse_or_round_trip_on_their_own(value: str) -> None:
    for write, read in (
        (steps.hostname_text, lambda t: t[:-1]),
        (steps.locale_text, lambda t: t[len("LANG="):-1]),
        (lambda v: initramfs_modules_text([v]), lambda t: t.split("\n")[1]),
        (lambda v: mkinitcpio_conf([v]), lambda t: " ".join(parse.bash_array(t, "MODULES"))),
        (lambda v: steps.fstab_text(v, "ext4", None), lambda t: parse.fstab(t)[0][0].removeprefix("UUID=")),
        (lambda v: mirrorlist([v]), lambda t: parse.pacman_conf("[x]\n" + t)[0][1][0][1]),
    ):
        try:
            text = write(value)
        except ArchamiError:
            continue
        assert read(text) == value


# -- the injection of issue 11 --------------------------------------------------------------------------------

INJECTION = "ec2]\n[options]\nSigLevel = Never\n[ec2"


def test_a_repository_name_that_opens_a_section_is_refused_by_the_schema() -> None:
    document = with_value(ARCH, ("repositories", 0, "name"), INJECTION)
    with pytest.raises(ConfigError, match=r"repositories\[0\]\.name.*is not a repository name"):
        parse_definition(to_toml(document))
    for bad in ("ec2\n", "ec2 ", "[ec2]", "ec2#x", "options"):
        with pytest.raises(ConfigError, match=r"repositories\[0\]\.name"):
            parse_definition(to_toml(with_value(ARCH, ("repositories", 0, "name"), bad)))


def test_and_by_the_writer_when_it_comes_from_elsewhere() -> None:
    sneaky = Repository.model_construct(name=INJECTION, server="https://r.example/", siglevel="Required", first=True)
    with pytest.raises(ArchamiError, match="pacman repository name"):
        pacman_conf(architecture="x86_64", mirrors=["https://m.example/"], repositories=[sneaky])
    weak = Repository.model_construct(name="ec2", server="https://r.example/\nSigLevel = Never", siglevel="Required",
                                      first=True)
    with pytest.raises(ArchamiError, match="Server URL"):
        pacman_conf(architecture="x86_64", mirrors=["https://m.example/"], repositories=[weak])
    never = Repository.model_construct(name="ec2", server="https://r.example/", siglevel="Never", first=True)
    with pytest.raises(ArchamiError, match="weaker"):
        pacman_conf(architecture="x86_64", mirrors=["https://m.example/"], repositories=[never])


def test_settings_round_trip() -> None:
    values: dict[str, object] = {"default_user": "admin", "grow_root": False, "host_key_types": ["ed25519"]}
    assert parse.json_equal(Settings(values).to_json(), values)
