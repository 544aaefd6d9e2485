"""The image definition schema: one table of typed settings.

Every setting of an image definition is declared here once, with its type, default and a help text
(`Field(description=...)`); `archami schema` prints this table, and the docs and validation come from it.
Unknown keys are errors (extra="forbid") so a typo never silently builds the wrong image.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from archami.config.publish import PublishSettings
from archami.config.reproducible import Reproducible
from archami.config.sizes import parse_size

Distro = Literal["arch", "debian"]
RootDevice = Literal["ebs", "instance-store"]
Virtualization = Literal["hvm", "paravirtual"]
Architecture = Literal["x86_64", "i686", "aarch64"]
KernelChannel = Literal["stable", "lts"]

_PACKAGE_NAME = re.compile(r"^[a-z0-9@_+][a-z0-9@._+-]*$")
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9@_.:-]+$")
_FLAVOUR_NAME = re.compile(r"^[a-z][a-z0-9]*$")

Size = Annotated[int, BeforeValidator(parse_size)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_packages(names: list[str]) -> list[str]:
    for name in names:
        if not _PACKAGE_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid package name")
    return names


class Packages(Strict):
    add: list[str] = Field(default_factory=list, description="Packages installed on top of the base set.")
    remove: list[str] = Field(
        default_factory=list, description="Packages removed from the base set (or uninstalled after it)."
    )

    _names = field_validator("add", "remove")(_check_packages)

    @model_validator(mode="after")
    def _disjoint(self) -> Packages:
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(f"packages both added and removed: {', '.join(both)}")
        return self


class Services(Strict):
    enable: list[str] = Field(default_factory=list, description="systemd units enabled at boot.")
    disable: list[str] = Field(default_factory=list, description="systemd units disabled (or masked).")
    deferred: list[str] = Field(
        default_factory=list,
        description="Enabled units started by multi-user.target instead of their [Install] target, so they "
        "run beside sshd rather than before it (e.g. systemd-resolved, which otherwise holds sysinit.target).",
    )

    @field_validator("enable", "disable", "deferred")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _SERVICE_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid systemd unit name")
        return names


class FileSpec(Strict):
    path: str = Field(description="Absolute path inside the image.")
    content: str = Field(default="", description="File content (text).")
    mode: str = Field(default="0644", description="Octal permission bits.")
    symlink: str | None = Field(default=None, description="Make a symbolic link to this target instead.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"{path!r} must be an absolute path without '..'")
        return path

    @field_validator("mode")
    @classmethod
    def _octal(cls, mode: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3,4}", mode):
            raise ValueError(f"{mode!r} is not an octal mode such as '0644'")
        return mode


class Kernel(Strict):
    stable: str = Field(description="Kernel package for the 'stable' channel (e.g. linux, linux-image-cloud-amd64).")
    lts: str | None = Field(default=None, description="Kernel package for the 'lts' channel, if any.")
    cmdline: list[str] = Field(default_factory=list, description="Extra kernel command line arguments.")
    initramfs_modules: list[str] = Field(
        default_factory=list, description="Modules always put in the initramfs (no host autodetect)."
    )


HostKeyType = Literal["ed25519", "ecdsa", "rsa"]


def _all_host_key_types() -> list[HostKeyType]:
    return ["ed25519", "ecdsa", "rsa"]


def _ebs() -> list[RootDevice]:
    return ["ebs"]


def _hvm() -> list[Virtualization]:
    return ["hvm"]


def _stable() -> list[KernelChannel]:
    return ["stable"]


class Ssh(Strict):
    password_authentication: bool = Field(default=False, description="Allow password logins (never on AMIs).")
    permit_root_login: Literal["no", "prohibit-password"] = Field(
        default="prohibit-password", description="Root login policy; key-only when allowed."
    )
    after_network: bool = Field(
        default=True, description="Order the SSH server's unit After=network.target so SSH closes cleanly on reboot."
    )
    host_key_types: list[HostKeyType] = Field(
        default_factory=_all_host_key_types,
        description="Host key types generated on first boot.",
    )


DEFAULT_DHCP_OPTIONS = [
    "subnet-mask",
    "broadcast-address",
    "time-offset",
    "routers",
    "domain-name",
    "domain-name-servers",
    "host-name",
    "interface-mtu",
    "fqdn",
]


class Network(Strict):
    stack: Literal["networkd", "dhclient"] = Field(
        default="networkd", description="DHCP client: systemd-networkd, or ISC dhclient retrying forever."
    )
    dhcp_options: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DHCP_OPTIONS), description="DHCP options requested."
    )


class FirstBoot(Strict):
    agent: Literal["archami", "cloud-init"] = Field(
        default="archami",
        description="archami's agent does everything; with cloud-init it only does mirrors and keyring.",
    )
    default_user: str = Field(default="root", description="User whose authorized_keys receives the keys.")
    grow_root: bool = Field(default=True, description="Grow the root partition and filesystem to the volume.")
    region_mirrors: bool = Field(default=True, description="Pick package mirrors for the instance's region.")
    user_data_scripts: bool = Field(default=True, description="Run a '#!' user-data script once per instance.")


class Repository(Strict):
    name: str = Field(description="Repository name (its section in the package manager's configuration).")
    server: str = Field(description="Base URL the build installs from ($repo, $arch expanded when it is used).")
    instance_server: str | None = Field(
        default=None,
        description="Base URL instances use for updates, when it differs from the build's (e.g. a file:// build "
        "copy of a repository that instances reach over HTTPS). Default: server.",
    )
    siglevel: str = Field(
        default="Required", description="Signature checking of this repository (Arch: SigLevel; never weaker)."
    )
    key: str | None = Field(
        default=None, description="Public key to trust (a path relative to the definition file, or absolute)."
    )
    instances: bool = Field(
        default=True, description="Instances use this repository too (false: the build only, e.g. a local copy)."
    )
    first: bool = Field(default=False, description="Put this repository before the distro's own.")


class Disk(Strict):
    size: Size = Field(default=2 * 1024**3, description="Raw image size (the AMI's root volume size).")
    filesystem: Literal["ext4"] = Field(default="ext4", description="Root filesystem type.")
    esp_size: Size = Field(default=64 * 1024**2, description="EFI system partition size (hvm).")

    @field_validator("size")
    @classmethod
    def _min(cls, size: int) -> int:
        if size < 512 * 1024**2:
            raise ValueError("must be at least 512MiB")
        if size % (1024**3) and size % (1024**2):
            raise ValueError("must be a whole number of MiB")
        return size


class FlavourKernel(Strict):
    package: str | None = Field(
        default=None, description="Kernel package for this flavour, instead of the channel's (kernel.stable/lts)."
    )
    cmdline: list[str] = Field(default_factory=list, description="Kernel command line arguments added.")
    initramfs_modules: list[str] = Field(default_factory=list, description="Initramfs modules added.")


class Flavour(Strict):
    """A variant of the image that overrides any image setting: lists add to the definition's (a file with the
    same path replaces the definition's), tables replace just the keys they set, plain values replace."""

    description: str = Field(default="", description="What the flavour is for (release page).")
    instance_type: str | None = Field(default=None, description="Suggested instance type (release page).")
    hostname: str | None = None
    timezone: str | None = None
    locale: str | None = None
    kernel: FlavourKernel = Field(default_factory=FlavourKernel)
    packages: Packages = Field(default_factory=Packages, description="Packages this flavour adds/removes.")
    services: Services = Field(default_factory=Services, description="Units this flavour enables/disables.")
    files: list[FileSpec] = Field(default_factory=list, description="Files added (or replaced, by path).")
    ssh: Ssh | None = Field(default=None, description="sshd settings this flavour changes.")
    network: Network | None = Field(default=None, description="Network settings this flavour changes.")
    firstboot: FirstBoot | None = Field(default=None, description="First-boot settings this flavour changes.")
    disk: Disk | None = Field(default=None, description="Disk settings this flavour changes.")


class Exclude(Strict):
    release: str | None = None
    root_device: RootDevice | None = None
    virtualization: Virtualization | None = None
    architecture: Architecture | None = None
    flavour: str | None = None
    kernel: KernelChannel | None = None


class Matrix(Strict):
    release: list[str] = Field(default_factory=list, description="Releases (default: the top-level release).")
    root_device: list[RootDevice] = Field(default_factory=_ebs)
    virtualization: list[Virtualization] = Field(default_factory=_hvm)
    architecture: list[Architecture] = Field(default_factory=list, description="Default: top-level one.")
    flavour: list[str] = Field(default_factory=lambda: ["default"])
    kernel: list[KernelChannel] = Field(default_factory=_stable)
    exclude: list[Exclude] = Field(default_factory=list, description="Combinations left out.")


class Definition(Strict):
    """A whole image definition file."""

    name: str = Field(description="Image family name, used in AMI names: NAME-VARIANT-RELEASEID.")
    description: str = Field(default="", description="AMI description.")
    distro: Distro
    release: str = Field(description="Distro release: 'rolling' for Arch, a suite for Debian.")
    package_manager: str | None = Field(default=None, description="Must be the distro's package manager.")
    architecture: Architecture = "x86_64"
    init: Literal["systemd", "sysvinit"] = "systemd"
    hostname: str = Field(default="localhost", description="Hostname until metadata sets one.")
    timezone: str = "UTC"
    locale: str = "C.UTF-8"
    kernel: Kernel
    packages: Packages = Field(default_factory=Packages)
    services: Services = Field(default_factory=Services)
    files: list[FileSpec] = Field(default_factory=list)
    ssh: Ssh = Field(default_factory=Ssh)
    network: Network = Field(default_factory=Network)
    firstboot: FirstBoot = Field(default_factory=FirstBoot)
    repositories: list[Repository] = Field(default_factory=list, description="Extra package repositories.")
    mirrors: list[str] = Field(
        default_factory=list, description="Package mirrors (default: $ARCHAMI_ARCH_MIRROR or the distro's)."
    )
    disk: Disk = Field(default_factory=Disk)
    reproducible: Reproducible = Field(default_factory=Reproducible, description="Pinned time stamps and packages.")
    flavours: dict[str, Flavour] = Field(default_factory=dict)
    matrix: Matrix = Field(default_factory=Matrix)
    publish: PublishSettings = Field(
        default_factory=PublishSettings,
        description="Where and how the AMIs are published; `archami publish`/`release` flags override it.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
            raise ValueError("use lower-case letters, digits and '-' (AMI names are built from it)")
        return name

    @field_validator("flavours")
    @classmethod
    def _flavour_names(cls, flavours: dict[str, Flavour]) -> dict[str, Flavour]:
        for name in flavours:
            if not _FLAVOUR_NAME.match(name) or name == "default":
                raise ValueError(f"{name!r} is not a flavour name (lower-case word, not 'default')")
        return flavours
