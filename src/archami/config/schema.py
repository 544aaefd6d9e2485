"""The image definition schema: one table of typed settings.

Every setting of an image definition is declared here once, with its type, default and a help text
(`Field(description=...)`); `archami schema` prints this table, and the docs and validation come from it.
Unknown keys are errors (extra="forbid") so a typo never silently builds the wrong image, and strict mode
means no coercion: `grow_root = "no"` is an error, not `True`. The string types (config/types.py) match
whole values; rules that depend on the distro come from distro/rules.py through the validation context
(`Definition.model_validate(raw, context={"rules": rules_for(distro)})`, which the loader does).

Rules that tie fields of one table together are model validators here (so they are reported along with
every other error of the file); rules across tables are in config/checks.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from archami.config.publish import PublishSettings
from archami.config.reproducible import Reproducible
from archami.config.sizes import format_size, is_decimal, parse_size
from archami.config.types import (
    Description,
    DhcpOption,
    FileMode,
    FlavourName,
    FlavourRef,
    Hostname,
    ImageFamily,
    ImagePath,
    InstanceType,
    KernelArg,
    LinkTarget,
    Locale,
    LocalPath,
    MirrorUrl,
    ModuleName,
    PackageName,
    ReleaseName,
    SigLevel,
    Timezone,
    UnitName,
    UserName,
    distro_rules,
    unique,
)
from archami.distro.rules import ALL_RULES, PACMAN_REPOSITORY

Distro = Literal["arch", "debian"]
RootDevice = Literal["ebs", "instance-store"]
Virtualization = Literal["hvm", "paravirtual"]
Architecture = Literal["x86_64", "i686", "aarch64"]
KernelChannel = Literal["stable", "lts", "ec2"]
HostKeyType = Literal["ed25519", "ecdsa", "rsa"]

MIB = 1024**2
MIN_DISK = 512 * MIB
MIN_ESP = 33 * MIB  # FAT32 needs 65525 clusters: ~33 MiB with 512-byte clusters


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Packages(Strict):
    add: list[PackageName] = Field(default_factory=list, description="Packages installed on top of the base set.")
    remove: list[PackageName] = Field(
        default_factory=list, description="Packages removed from the base set (or uninstalled after it)."
    )

    _unique = field_validator("add", "remove")(unique)

    @model_validator(mode="after")
    def _disjoint(self) -> Packages:
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(f"packages both added and removed: {', '.join(both)}")
        return self


class Services(Strict):
    enable: list[UnitName] = Field(default_factory=list, description="systemd units enabled at boot.")
    disable: list[UnitName] = Field(default_factory=list, description="systemd units disabled (or masked).")
    deferred: list[UnitName] = Field(
        default_factory=list,
        description="Enabled units started by multi-user.target instead of their [Install] target, so they "
        "run beside sshd rather than before it (e.g. systemd-resolved, which otherwise holds sysinit.target).",
    )

    _unique = field_validator("enable", "disable", "deferred")(unique)

    @model_validator(mode="after")
    def _consistent(self) -> Services:
        both = [u for u in self.enable if u in self.disable]
        if both:
            raise ValueError(f"units both enabled and disabled: {', '.join(both)}")
        off = [u for u in self.deferred if u in self.disable]
        if off:
            raise ValueError(f"units both deferred and disabled: {', '.join(off)}")
        return self


class FileSpec(Strict):
    path: ImagePath = Field(description="Absolute path inside the image.")
    content: str = Field(default="", description="File content (text).")
    mode: FileMode = Field(default="0644", description="Octal permission bits ('0644', or 0o644).")
    symlink: LinkTarget | None = Field(default=None, description="Make a symbolic link to this target instead.")

    @model_validator(mode="after")
    def _one_kind(self) -> FileSpec:
        if self.symlink is not None and ("content" in self.model_fields_set or "mode" in self.model_fields_set):
            raise ValueError(f"{self.path}: a symlink has no content or mode (set either symlink or content)")
        return self


def _unique_paths(files: list[FileSpec]) -> list[FileSpec]:
    unique([f.path for f in files])
    return files


class Kernel(Strict):
    stable: PackageName = Field(
        description="Kernel package for the 'stable' channel (e.g. linux, linux-image-cloud-amd64)."
    )
    lts: PackageName | None = Field(default=None, description="Kernel package for the 'lts' channel, if any.")
    ec2: PackageName | None = Field(
        default=None,
        description="Kernel package for the 'ec2' channel: archami's linux-ec2 (`archami kernel build`), if any.",
    )
    cmdline: list[KernelArg] = Field(default_factory=list, description="Extra kernel command line arguments.")
    initramfs_modules: list[ModuleName] = Field(
        default_factory=list, description="Modules always put in the initramfs (no host autodetect)."
    )

    _unique = field_validator("cmdline", "initramfs_modules")(unique)


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
        default_factory=_all_host_key_types, min_length=1, description="Host key types generated on first boot."
    )

    _unique = field_validator("host_key_types")(unique)

    @field_validator("password_authentication")
    @classmethod
    def _key_only(cls, allowed: bool) -> bool:
        if allowed:
            raise ValueError("public AMIs must be key-only (set it to false)")
        return allowed


DEFAULT_DHCP_OPTIONS: list[DhcpOption] = [
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
    dhcp_options: list[DhcpOption] = Field(
        default_factory=lambda: list(DEFAULT_DHCP_OPTIONS), min_length=1, description="DHCP options requested."
    )

    _unique = field_validator("dhcp_options")(unique)


class FirstBoot(Strict):
    agent: Literal["archami", "cloud-init"] = Field(
        default="archami",
        description="archami's agent does everything; with cloud-init it only does mirrors and keyring.",
    )
    default_user: UserName = Field(default="root", description="User whose authorized_keys receives the keys.")
    grow_root: bool = Field(default=True, description="Grow the root partition and filesystem to the volume.")
    region_mirrors: bool = Field(default=True, description="Pick package mirrors for the instance's region.")
    user_data_scripts: bool = Field(default=True, description="Run a '#!' user-data script once per instance.")


class Repository(Strict):
    name: str = Field(description="Repository name (its section in the package manager's configuration).")
    server: MirrorUrl = Field(description="Base URL the build installs from ($repo, $arch expanded when it is used).")
    instance_server: MirrorUrl | None = Field(
        default=None,
        description="Base URL instances use for updates, when it differs from the build's (e.g. a file:// build "
        "copy of a repository that instances reach over HTTPS). Default: server.",
    )
    siglevel: SigLevel = Field(
        default="Required", description="Signature checking of this repository (Arch: SigLevel; never weaker)."
    )
    key: LocalPath | None = Field(
        default=None, description="Public key to trust (a path relative to the definition file, or absolute)."
    )
    instances: bool = Field(
        default=True, description="Instances use this repository too (false: the build only, e.g. a local copy)."
    )
    first: bool = Field(default=False, description="Put this repository before the distro's own.")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str, info: ValidationInfo) -> str:
        rules = distro_rules(info)
        if rules is not None and rules.repository_name is not None:
            problem = rules.repository_error(name)
        elif not PACMAN_REPOSITORY.fullmatch(name):
            problem = f"{name!r} is not a repository name (letters, digits, '_', '+', '-'; at most 64)"
        else:
            problem = None
        if problem:
            raise ValueError(problem)
        return name


def _disk_size(minimum: int, what: str) -> Callable[[object], int]:
    def check(value: object) -> int:
        size = parse_size(value)
        if size % MIB:
            decimal = f" ({value} is decimal: {size:,} bytes; write GiB/MiB for binary sizes)" if is_decimal(
                value) else ""
            raise ValueError(f"must be a whole number of MiB{decimal}")
        if size < minimum:
            raise ValueError(f"must be at least {format_size(minimum)} ({what})")
        return size

    return check


class Disk(Strict):
    size: int = Field(default=2 * 1024**3, description="Raw image size (the AMI's root volume size), e.g. '2GiB'.")
    filesystem: Literal["ext4"] = Field(default="ext4", description="Root filesystem type.")
    esp_size: int = Field(default=64 * MIB, description="EFI system partition size (hvm), e.g. '64MiB'.")

    _size = field_validator("size", mode="before")(_disk_size(MIN_DISK, "the root volume"))
    _esp = field_validator("esp_size", mode="before")(_disk_size(MIN_ESP, "FAT32's smallest size"))

    @model_validator(mode="after")
    def _fits(self) -> Disk:
        if self.size - self.esp_size < MIN_DISK - 64 * MIB:
            raise ValueError(f"an EFI partition of {format_size(self.esp_size)} leaves too little of "
                             f"{format_size(self.size)} for the root filesystem")
        return self



class FlavourKernel(Strict):
    package: PackageName | None = Field(
        default=None, description="Kernel package for this flavour, instead of the channel's (kernel.stable/lts)."
    )
    cmdline: list[KernelArg] = Field(default_factory=list, description="Kernel command line arguments added.")
    initramfs_modules: list[ModuleName] = Field(default_factory=list, description="Initramfs modules added.")

    _unique = field_validator("cmdline", "initramfs_modules")(unique)


class Flavour(Strict):
    """A variant of the image that overrides any image setting: lists add to the definition's (a file with the
    same path replaces the definition's), tables replace just the keys they set, plain values replace."""

    description: Description = Field(default="", description="What the flavour is for (release page).")
    instance_type: InstanceType | None = Field(default=None, description="Suggested instance type (release page).")
    hostname: Hostname | None = Field(
        default=None, description="Hostname of this flavour's images (default: the definition's)."
    )
    timezone: Timezone | None = Field(
        default=None, description="Time zone of this flavour's images (default: the definition's)."
    )
    locale: Locale | None = Field(
        default=None, description="Locale of this flavour's images (default: the definition's)."
    )
    kernel: FlavourKernel = Field(
        default_factory=FlavourKernel, description="Kernel package and arguments this flavour changes or adds."
    )
    packages: Packages = Field(default_factory=Packages, description="Packages this flavour adds/removes.")
    services: Services = Field(default_factory=Services, description="Units this flavour enables/disables.")
    files: list[FileSpec] = Field(default_factory=list, description="Files added (or replaced, by path).")
    ssh: Ssh | None = Field(default=None, description="sshd settings this flavour changes.")
    network: Network | None = Field(default=None, description="Network settings this flavour changes.")
    firstboot: FirstBoot | None = Field(default=None, description="First-boot settings this flavour changes.")
    disk: Disk | None = Field(default=None, description="Disk settings this flavour changes.")

    _files = field_validator("files")(_unique_paths)


class ArchitectureKernel(Strict):
    stable: PackageName | None = Field(
        default=None, description="Kernel package of the 'stable' channel on this architecture."
    )
    lts: PackageName | None = Field(
        default=None, description="Kernel package of the 'lts' channel on this architecture."
    )
    ec2: PackageName | None = Field(
        default=None, description="Kernel package of the 'ec2' channel on this architecture."
    )
    cmdline: list[KernelArg] = Field(default_factory=list, description="Kernel command line arguments added.")
    initramfs_modules: list[ModuleName] = Field(default_factory=list, description="Initramfs modules added.")

    _unique = field_validator("cmdline", "initramfs_modules")(unique)


class ArchitectureSettings(Strict):
    """What differs between one image's architectures (Debian's linux-image-cloud-amd64 and -arm64; Arch Linux
    ARM's own kernel and mirrors). Applied to that architecture's variants before their flavour."""

    kernel: ArchitectureKernel = Field(
        default_factory=ArchitectureKernel, description="Kernel packages and arguments of this architecture."
    )
    packages: Packages = Field(default_factory=Packages, description="Packages added/removed on this architecture.")
    mirrors: list[MirrorUrl] = Field(
        default_factory=list, description="Package mirrors for this architecture, instead of the definition's."
    )


class Exclude(Strict):
    """One rule of matrix.exclude: the combinations matching every value it names are left out."""

    release: ReleaseName | None = Field(default=None, description="Leave out combinations of this release.")
    root_device: RootDevice | None = Field(default=None, description="Leave out combinations of this root device.")
    virtualization: Virtualization | None = Field(
        default=None, description="Leave out combinations of this virtualization type."
    )
    architecture: Architecture | None = Field(
        default=None, description="Leave out combinations of this architecture."
    )
    flavour: FlavourRef | None = Field(
        default=None, description="Leave out combinations of this flavour ('default': the unflavoured one)."
    )
    kernel: KernelChannel | None = Field(default=None, description="Leave out combinations of this kernel channel.")

    @model_validator(mode="after")
    def _not_empty(self) -> Exclude:
        if not self.model_fields_set:
            raise ValueError("an empty exclude rule would exclude every combination: name at least one value")
        return self


class Matrix(Strict):
    release: list[ReleaseName] = Field(default_factory=list, description="Releases (default: the top-level release).")
    root_device: list[RootDevice] = Field(
        default_factory=_ebs,
        description="Root devices: ebs (an EBS snapshot) and/or instance-store (an S3 bundle, Xen instances only).",
    )
    virtualization: list[Virtualization] = Field(
        default_factory=_hvm, description="Virtualization types: hvm and/or paravirtual (Xen PV, pv-grub)."
    )
    architecture: list[Architecture] = Field(
        default_factory=list, description="Architectures (default: the top-level architecture)."
    )
    flavour: list[FlavourRef] = Field(
        default_factory=lambda: ["default"],
        description="Flavours, by name of a [flavours.NAME] table; 'default' is the unflavoured image.",
    )
    kernel: list[KernelChannel] = Field(
        default_factory=_stable, description="Kernel channels, each naming a package of the kernel table."
    )
    exclude: list[Exclude] = Field(
        default_factory=list, description="Combinations left out: each rule drops those matching all it names."
    )

    @field_validator("release", "root_device", "virtualization", "architecture", "flavour", "kernel")
    @classmethod
    def _values(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("an empty list gives no variants: list at least one value (or leave the key out)")
        return unique(values)


class Definition(Strict):
    """A whole image definition file."""

    name: ImageFamily = Field(description="Image family name, used in AMI names: NAME-VARIANT-RELEASEID.")
    description: Description = Field(default="", description="AMI description (at most 255 characters).")
    distro: Distro = Field(description="Distribution the image is built from.")
    release: ReleaseName = Field(description="Distro release: 'rolling' for Arch, a suite for Debian.")
    package_manager: str | None = Field(default=None, description="Must be the distro's package manager.")
    architecture: Architecture = Field(
        default="x86_64", description="CPU architecture of the image (matrix.architecture lists several)."
    )
    init: Literal["systemd", "sysvinit"] = Field(
        default="systemd", description="Init system; only systemd is supported (the first-boot agent is units)."
    )
    hostname: Hostname = Field(default="localhost", description="Hostname until metadata sets one (RFC 1123, <= 64).")
    timezone: Timezone = Field(default="UTC", description="IANA time zone (checked against the host's zoneinfo).")
    locale: Locale = Field(default="C.UTF-8", description="glibc locale (checked against glibc's SUPPORTED list).")
    kernel: Kernel = Field(description="Kernel packages per channel and what the boot loader passes them.")
    packages: Packages = Field(default_factory=Packages, description="Packages added to or removed from the base set.")
    services: Services = Field(default_factory=Services, description="systemd units enabled, disabled or deferred.")
    files: list[FileSpec] = Field(
        default_factory=list, description="Files or symbolic links written into the image ([[files]] tables)."
    )
    ssh: Ssh = Field(default_factory=Ssh, description="The SSH server's settings.")
    network: Network = Field(default_factory=Network, description="How the instance gets its address (DHCP).")
    firstboot: FirstBoot = Field(
        default_factory=FirstBoot, description="What runs on an instance's first boot (keys, root growth, mirrors)."
    )
    repositories: list[Repository] = Field(default_factory=list, description="Extra package repositories.")
    mirrors: list[MirrorUrl] = Field(
        default_factory=list, description="Package mirrors (default: $ARCHAMI_ARCH_MIRROR or the distro's)."
    )
    disk: Disk = Field(default_factory=Disk, description="The raw image's size and layout.")
    reproducible: Reproducible = Field(default_factory=Reproducible, description="Pinned time stamps and packages.")
    flavours: dict[FlavourName, Flavour] = Field(
        default_factory=dict,
        description="Named variants of the image ([flavours.NAME]), each overriding any setting; listed in "
        "matrix.flavour to be built.",
    )
    architectures: dict[Architecture, ArchitectureSettings] = Field(
        default_factory=dict, description="Per-architecture settings, e.g. [architectures.aarch64] kernel.stable."
    )
    matrix: Matrix = Field(
        default_factory=Matrix, description="The variants built: every combination of its lists, less exclude."
    )
    publish: PublishSettings = Field(
        default_factory=PublishSettings,
        description="Where and how the AMIs are published; `archami publish`/`release` flags override it.",
    )

    _files = field_validator("files")(_unique_paths)
    _mirrors = field_validator("mirrors")(unique)

    @field_validator("package_manager")
    @classmethod
    def _package_manager(cls, value: str | None, info: ValidationInfo) -> str | None:
        known = {r.package_manager for r in ALL_RULES}
        if value is not None and value not in known:
            raise ValueError(f"{value!r} is not {' or '.join(repr(r.package_manager) for r in ALL_RULES)}")
        rules = distro_rules(info)
        if value is not None and rules is not None and value != rules.package_manager:
            raise ValueError(f"{rules.name} uses {rules.package_manager}, not {value}")
        return value

    @field_validator("init")
    @classmethod
    def _systemd(cls, init: str) -> str:
        if init == "sysvinit":
            raise ValueError(
                "sysvinit is not supported: Arch Linux no longer packages it and archami's first-boot agent "
                "runs as systemd units; use init = \"systemd\""
            )
        return init

    @field_validator("repositories")
    @classmethod
    def _repositories(cls, repositories: list[Repository], info: ValidationInfo) -> list[Repository]:
        rules = distro_rules(info)
        if repositories and rules is not None and rules.repository_name is None:
            raise ValueError(rules.repository_error(repositories[0].name) or "not supported")
        if rules is not None and rules.repository_key_required:
            keyless = [r.name for r in repositories if not r.key]
            if keyless:
                raise ValueError(f"{keyless[0]!r} needs `key`: {rules.title} repositories are trusted by their own "
                                 "key only (never trusted=yes)")
        unique([r.name for r in repositories])
        return repositories

    @field_validator("flavours")
    @classmethod
    def _flavour_names(cls, flavours: dict[str, Flavour]) -> dict[str, Flavour]:
        if "default" in flavours:
            raise ValueError("'default' is the name of the unflavoured variant, not a flavour name")
        return flavours
