"""The EC2 configuration of an image root: small, named, ordered steps (the build log shows each name).

Every step takes a StepEnv and changes only files under env.ctx.root. Steps that need the image's own
programs (initramfs) go through the distro backend; everything else is plain file writes, so the steps
can be unit-tested on a temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from archami.config.schema import Ssh
from archami.config.spec import ImageSpec
from archami.config.types import DHCP_OPTION_CODES, UNIT_SUFFIXES
from archami.distro.base import BuildContext, DistroBackend
from archami.distro.rules import ALL_RULES
from archami.errors import ArchamiError
from archami.fsutil import empty_dir
from archami.image import boottune, grub
from archami.image.layout import DiskLayout
from archami.image.reproducible import EPOCH_ENV
from archami.image.rootfs import make_symlink, remove, resolve_in_root, write_file
from archami.runner import run
from archami.safetext import matching, one_line, token

__all__ = ["DHCP_OPTION_CODES"]  # re-exported: the table lives with the schema (config/types.py)

_HOSTNAME = re.compile(r"(?=.{1,64}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?)*", re.ASCII)
_LOCALE = re.compile(r"[A-Za-z0-9_.@-]{1,100}", re.ASCII)
_ZONE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]{1,250}\.(?:" + "|".join(UNIT_SUFFIXES) + ")", re.ASCII)
_DIRECTIVE_VALUE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)

@dataclass
class StepEnv:
    ctx: BuildContext
    backend: DistroBackend
    layout: DiskLayout
    cmdline: str

    @property
    def root(self) -> Path:
        return self.ctx.root

    @property
    def spec(self) -> ImageSpec:
        return self.ctx.spec


Step = Callable[[StepEnv], None]


def fstab_line(spec: str, mount_point: str, fs_type: str, options: str, dump: int, passno: int) -> str:
    """One fstab(5) entry: whitespace separates its fields, so no field may hold any."""
    fields = [token(spec, "fstab device"), token(mount_point, "mount point"), token(fs_type, "filesystem type"),
              token(options, "mount options")]
    return "\t".join([*fields, str(int(dump)), str(int(passno))])


def fstab_text(root_uuid: str, fs_type: str, esp_uuid: str | None) -> str:
    lines = ["# Written by archami: filesystems are found by UUID, whatever the device is called.",
             fstab_line(f"UUID={root_uuid}", "/", fs_type, "defaults,discard", 0, 1)]
    if esp_uuid is not None:
        # Automounted, never on a boot-time deadline: udev in the booted root starts only after the early
        # tmpfiles services, and the initramfs hands over a udev database without systemd's tags, so under a
        # slow CPU the ESP's by-uuid link appeared 15-40 s after PID 1 -- past the 10 s device timeout this
        # entry used to set, which left /boot/efi a plain directory of the root filesystem for GRUB or shim
        # updates to write into. The autofs point covers /boot/efi from early boot; the first access waits
        # for the device (systemd's default 90 s) and fails loudly rather than write to the root filesystem.
        options = "umask=0077,nofail,x-systemd.automount"
        lines.append(fstab_line(f"UUID={esp_uuid}", "/boot/efi", "vfat", options, 0, 2))
    return "\n".join(lines) + "\n"


def write_fstab(env: StepEnv) -> None:
    """Root by filesystem UUID; the EFI partition (hvm) by volume id, mounted on first access."""
    root = env.layout.root
    assert root.fs_uuid is not None
    esp = env.layout.part("esp").fs_uuid if env.layout.has("esp") else None
    if esp is not None:
        (env.root / "boot/efi").mkdir(parents=True, exist_ok=True)
    write_file(env.root, "/etc/fstab", fstab_text(root.fs_uuid, env.spec.disk.filesystem, esp))


def _option_names(options: Sequence[str]) -> Sequence[str]:
    for name in options:
        if name not in DHCP_OPTION_CODES:
            raise ArchamiError(f"network.dhcp_options: unknown DHCP option {name!r}")
    return options


def networkd_config(options: Sequence[str]) -> str:
    codes = [str(DHCP_OPTION_CODES[name]) for name in _option_names(options)]
    return (
        "# Written by archami: DHCP on every Ethernet NIC, retrying for ever (an EC2 NIC may come up late).\n"
        "[Match]\nType=ether\n\n"
        "[Network]\nDHCP=yes\n\n"
        "[DHCPv4]\n"
        "MaxAttempts=infinity\n"
        "UseMTU=yes\n"
        "UseDomains=yes\n"
        f"RequestOptions={' '.join(codes)}\n\n"
        "[DHCPv6]\nUseDomains=yes\n"
    )


def dhclient_config(options: Sequence[str]) -> str:
    return (
        "# Written by archami: like the seed, retry for ever and ask for these options.\n"
        "timeout 300;\n"
        "retry 5;\n"
        f"request {', '.join(_option_names(options))};\n"
    )


DHCLIENT_UNIT = """\
# Written by archami: ISC dhclient on every interface, never giving up (no -1), restarted if it dies.
[Unit]
Description=DHCP client (archami, retries for ever)
Wants=network.target
Before=network.target network-online.target

[Service]
ExecStart=/sbin/dhclient -4 -d -v -cf /etc/dhcp/dhclient.conf
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""


def configure_network(env: StepEnv) -> None:
    network = env.spec.network
    if "systemd-resolved.service" in env.spec.services.enabled:
        # Every resolver (glibc, Go programs, dig, gpg's dirmngr) reads /etc/resolv.conf: point it at
        # resolved's stub, as Debian's package does and Arch (and arch-boxes) leave to the image builder.
        make_symlink(env.root, "/etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf")
    if network.stack == "networkd":
        write_file(env.root, "/etc/systemd/network/80-archami-dhcp.network", networkd_config(network.dhcp_options))
    else:
        write_file(env.root, "/etc/dhcp/dhclient.conf", dhclient_config(network.dhcp_options))
        write_file(env.root, "/etc/systemd/system/archami-dhclient.service", DHCLIENT_UNIT)
        _systemctl(env, "enable", "archami-dhclient.service")


def sshd_config(ssh: Ssh | StepEnv) -> str:
    """The sshd_config drop-in: key-only logins. Every value is a keyword sshd knows (checked again here)."""
    ssh = ssh.spec.ssh if isinstance(ssh, StepEnv) else ssh
    if ssh.password_authentication:
        raise ArchamiError("refusing to write an sshd_config that allows password logins")
    types = [matching(t, _DIRECTIVE_VALUE, "host key type") for t in ssh.host_key_types]
    keys = "".join(f"HostKey /etc/ssh/ssh_host_{t}_key\n" for t in types)
    return (
        "# Written by archami: key-only logins (the first value of a setting wins, so this file rules).\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "PermitEmptyPasswords no\n"
        f"PermitRootLogin {matching(ssh.permit_root_login, _DIRECTIVE_VALUE, 'PermitRootLogin value')}\n"
        f"{keys}"
    )


def configure_sshd(env: StepEnv) -> None:
    main = resolve_in_root(env.root, "/etc/ssh/sshd_config")
    if not main.exists():
        raise ArchamiError("no /etc/ssh/sshd_config in the image: add the OpenSSH server package")
    text = main.read_text()
    include = "Include /etc/ssh/sshd_config.d/*.conf"
    if include not in text:
        main.write_text(f"{include}\n{text}")  # drop-ins must come first to take precedence
    write_file(env.root, "/etc/ssh/sshd_config.d/10-archami.conf", sshd_config(env.spec.ssh))


def order_sshd_after_network(env: StepEnv) -> None:
    """The seed's fix for unclean SSH closes on reboot: stop sshd before the network goes down."""
    if not env.spec.ssh.after_network:
        return
    unit = matching(env.backend.ssh_service, _UNIT, "unit name")
    write_file(
        env.root, f"/etc/systemd/system/{unit}.d/10-archami-after-network.conf",
        "# Written by archami: sshd stops before the network on shutdown, so sessions close cleanly.\n"
        "[Unit]\nAfter=network.target\n",
    )


def write_definition_files(env: StepEnv) -> None:
    for spec in env.spec.files:
        if spec.symlink is not None:
            make_symlink(env.root, spec.path, spec.symlink)
        else:
            write_file(env.root, spec.path, spec.content, int(spec.mode, 8))


def hostname_text(name: str) -> str:
    return f"{matching(name, _HOSTNAME, 'hostname')}\n"


def hosts_text(name: str) -> str:
    name = matching(name, _HOSTNAME, "hostname")
    return (f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def set_hostname(env: StepEnv) -> None:
    write_file(env.root, "/etc/hostname", hostname_text(env.spec.hostname))
    write_file(env.root, "/etc/hosts", hosts_text(env.spec.hostname))


def set_timezone(env: StepEnv) -> None:
    zone = matching(env.spec.timezone, _ZONE, "time zone")
    zoneinfo = env.root / "usr/share/zoneinfo" / zone
    if zoneinfo.exists():
        make_symlink(env.root, "/etc/localtime", f"/usr/share/zoneinfo/{zone}")
    elif zone in ("UTC", "Etc/UTC"):
        remove(env.root, "etc/localtime")  # no tzdata installed: without /etc/localtime, systemd uses UTC
    else:
        raise ArchamiError(f"timezone {zone!r} needs the time zone database in the image (add tzdata)")


def locale_text(locale: str) -> str:
    """locale.conf(5): shell-like KEY=VALUE lines; a locale name needs no quoting."""
    return f"LANG={matching(locale, _LOCALE, 'locale')}\n"


def set_locale(env: StepEnv) -> None:
    text = locale_text(env.spec.locale)
    write_file(env.root, "/etc/locale.conf", text)
    if (env.root / "etc/default").is_dir():
        write_file(env.root, "/etc/default/locale", text)


def install_firstboot_agent(env: StepEnv) -> None:
    from archami.firstboot.install import install_into

    install_into(env.root, env.spec, env.backend, env.ctx.log)


def _systemctl(env: StepEnv, action: str, *units: str) -> None:
    if units:
        run(["systemctl", f"--root={env.root}", "--no-reload", action, *units], env.ctx.log)


def set_services(env: StepEnv) -> None:
    """`systemctl --root` reads each unit's [Install] section and makes the links systemd would."""
    _systemctl(env, "enable", *env.spec.services.enabled)
    _systemctl(env, "disable", *env.spec.services.disabled)
    for unit in env.spec.services.deferred:
        defer_unit(env.root, unit)


def defer_unit(root: Path, unit: str) -> None:
    """Start an enabled unit from multi-user.target instead of the target its [Install] section names.

    A target waits for every unit it wants; under TCG systemd-resolved held sysinit.target (and so sshd)
    for 7 s. Deferred, it starts beside sshd, which needs no DNS."""
    matching(unit, _UNIT, "unit name")
    system = root / "etc/systemd/system"
    # Not glob(): its last, literal component follows symlinks, and these point into the image, not the host.
    links = [wants / unit for wants in system.glob("*.target.wants") if (wants / unit).is_symlink()]
    if not links:
        raise ArchamiError(f"services.deferred: {unit} is not enabled (list it in services.enable too)")
    target = os.readlink(links[0])
    for link in links:
        link.unlink()
    wants = system / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit).unlink(missing_ok=True)
    (wants / unit).symlink_to(target)


def configure_package_manager(env: StepEnv) -> None:
    env.backend.configure_package_manager(env.ctx)


def regenerate_initramfs(env: StepEnv) -> None:
    env.backend.regenerate_initramfs(env.ctx)


def grub_platform_dir(root: Path, platform: str) -> tuple[Path, bool]:
    """The GRUB modules to use for `platform` and whether they are the image's own (preferred, so the
    image's GRUB packages can update what they installed) or the build host's."""
    own = root / "usr/lib/grub" / platform
    if (own / "kernel.img").exists() and (root / "usr/bin/grub-mkimage").exists():
        return own, True
    return Path("/usr/lib/grub") / platform, False


def write_boot_config(env: StepEnv) -> None:
    """grub.cfg (hvm: BIOS and UEFI GRUB read the same file) or menu.lst (pv-grub)."""
    boot = grub.find_boot_files(env.root)
    title = one_line(env.spec.description or env.spec.variant.name, "boot menu title")
    (env.root / "boot/grub").mkdir(parents=True, exist_ok=True)
    if env.spec.variant.virtualization == "paravirtual":
        write_file(env.root, "/boot/grub/menu.lst", grub.menu_lst(title, boot, env.cmdline, env.layout.scheme))
        return
    assert env.layout.root.fs_uuid is not None
    targets = grub.grub_targets(env.spec.architecture)
    bios = any(not t.is_efi for t in targets)  # only a PC has the COM1 that GRUB's serial terminal drives
    write_file(env.root, "/boot/grub/grub.cfg",
               grub.grub_cfg(title, boot, env.layout.root.fs_uuid, env.cmdline, serial=bios))
    # GRUB's normal mode reads these lists (command and module autoloading) from $prefix/<platform>/.
    for platform in (t.platform for t in targets):
        source, _own = grub_platform_dir(env.root, platform)
        target = env.root / "boot/grub" / platform
        target.mkdir(parents=True, exist_ok=True)
        for lst in source.glob("*.lst"):
            shutil.copyfile(lst, target / lst.name)


def clean_package_manager(env: StepEnv) -> None:
    env.backend.clean(env.ctx)


def tune_boot(env: StepEnv) -> None:
    """No boot-time work an EC2 instance has no use for: a generator that cannot work there, caches rebuilt
    that the packages already built, and the distro's own such units (image/boottune.py, the backend)."""
    for name in boottune.mask_generators(env.root):
        env.ctx.log.info("masked %s", name)
    epoch = env.ctx.env.get(EPOCH_ENV)
    boottune.write_update_stamps(env.root, int(epoch) if epoch else None)
    env.backend.tune_boot(env.ctx)


# Nothing that identifies one machine, grants access, or records the build may ship.
_SECRETS = [
    "etc/ssh/ssh_host_*",
    "root/.ssh/authorized_keys*",
    "home/*/.ssh/authorized_keys*",
    "root/.*_history", "home/*/.*_history",
    "root/.lesshst", "root/.viminfo", "root/.wget-hsts",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    "var/lib/systemd/credential.secret",
    "etc/shadow-", "etc/gshadow-", "etc/passwd-", "etc/group-", "etc/subuid-", "etc/subgid-",
    "var/cache/ldconfig/aux-cache",
]
# Every distro's package manager keyring too (a master key per instance is made on first boot).
_SECRET_DIRS = ["root/.gnupg", "root/.cache", "var/log/journal",
                *(home.lstrip("/") for rules in ALL_RULES for home in rules.gnupg_homes)]


def lock_root_password(root: Path) -> None:
    shadow = resolve_in_root(root, "/etc/shadow")
    if not shadow.exists():
        raise ArchamiError("no /etc/shadow in the image")
    lines = []
    for line in shadow.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "root":
            fields[1] = "!*"  # locked, no hash: SSH keys are the only way in
        lines.append(":".join(fields))
    shadow.write_text("\n".join(lines) + "\n")


def remove_secrets(env: StepEnv) -> None:
    root = env.root
    for pattern in _SECRETS:
        for path in remove(root, pattern):
            env.ctx.log.info("removed %s", path)
    for directory in _SECRET_DIRS:
        host = resolve_in_root(root, "/" + directory, follow_last=False)
        if host.is_dir() and not host.is_symlink():
            shutil.rmtree(host)
            env.ctx.log.info("removed /%s/", directory)
    # An empty machine-id: systemd makes a new one on the instance's first boot.
    write_file(root, "/etc/machine-id", "", 0o444)
    lock_root_password(root)
    for scratch in ("tmp", "var/tmp"):
        empty_dir(root / scratch)
    # Logs of the build are the build's (build.log), not the image's.
    if (root / "var/log").is_dir():
        for log_file in (root / "var/log").rglob("*"):
            if log_file.is_file() and not log_file.is_symlink():
                log_file.write_bytes(b"")
    resolv = root / "etc/resolv.conf"
    if resolv.is_file() and not resolv.is_symlink():
        resolv.write_text("# Filled in at boot by the DHCP client.\n")


EC2_STEPS: tuple[Step, ...] = (
    write_fstab,
    configure_network,
    configure_sshd,
    order_sshd_after_network,
    write_definition_files,
    set_hostname,
    set_timezone,
    set_locale,
    install_firstboot_agent,
    set_services,
    configure_package_manager,
    regenerate_initramfs,
    write_boot_config,
    clean_package_manager,
    tune_boot,
    remove_secrets,
)


def step_name(step: Step) -> str:
    return step.__name__


# The whole build, in order: the one list the pipeline follows, the CLI's progress counts and the README
# and `archami build --help` print. "root" is the cached or freshly bootstrapped root filesystem.
ROOT_STAGE = "root"
ROOT_SUBSTAGES = ("restore_cached_root", "bootstrap", "store_root_in_cache")  # reported as progress of "root"
DISK_STAGES = ("assemble_disk", "audit", "manifest")
EXECUTION_ORDER: tuple[str, ...] = (ROOT_STAGE, *(step_name(s) for s in EC2_STEPS), *DISK_STAGES)


def execution_order_text() -> str:
    """`root (DistroBackend.bootstrap, cached) → write_fstab → … → manifest`, for docs and --help."""
    return " → ".join(EXECUTION_ORDER)


__all__ += ["EC2_STEPS", "EXECUTION_ORDER", "Step", "StepEnv", "execution_order_text", "step_name"]
