"""Host tools archami runs, and how to install each: `archami doctor` prints this table, and the runner's
"not installed" errors quote it. The distros' own tools (mmdebstrap, pacman, their keyrings) come from
distro/rules.py."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from archami.distro.rules import ALL_RULES
from archami.errors import ToolMissingError


@dataclass(frozen=True)
class HostTool:
    name: str  # what `archami doctor` shows
    purpose: str
    debian: str  # Debian/Ubuntu package
    arch: str  # Arch Linux package
    command: str | None = None  # an executable looked up on PATH (and in the sbin dirs)
    path: str | None = None  # or a file that must exist
    required: bool = True


HOST_TOOLS: tuple[HostTool, ...] = (
    *(HostTool(*tool) for rules in ALL_RULES for tool in rules.host_tools),
    HostTool("bsdtar", "package archives", "libarchive-tools", "libarchive", command="bsdtar"),
    HostTool("mkfs.ext4", "ext4 root filesystem from a directory", "e2fsprogs", "e2fsprogs", command="mkfs.ext4"),
    HostTool("debugfs", "read ext4 images without mounting", "e2fsprogs", "e2fsprogs", command="debugfs"),
    HostTool("mkfs.fat", "EFI system partition", "dosfstools", "dosfstools", command="mkfs.fat"),
    HostTool("mtools", "copy files into the EFI partition without mounting", "mtools", "mtools", command="mcopy"),
    HostTool("sfdisk", "partition tables", "fdisk", "util-linux", command="sfdisk"),
    HostTool("unshare", "run image tools in a throwaway mount namespace", "util-linux", "util-linux",
             command="unshare"),
    HostTool("systemctl", "enable and disable units in the image root", "systemd", "systemd", command="systemctl"),
    HostTool("grub-mkimage", "GRUB core images", "grub-common", "grub", command="grub-mkimage"),
    HostTool("grub i386-pc", "GRUB for BIOS boot", "grub-pc-bin", "grub", path="/usr/lib/grub/i386-pc/boot.img"),
    HostTool("grub x86_64-efi", "GRUB for UEFI boot", "grub-efi-amd64-bin", "grub",
             path="/usr/lib/grub/x86_64-efi/linux.mod"),
    HostTool("grub arm64-efi", "GRUB for arm64 UEFI, for images without GRUB of their own (arm64 hosts)",
             "grub-efi-arm64-bin", "grub", path="/usr/lib/grub/arm64-efi/linux.mod", required=False),
    HostTool("qemu-user-static", "run an arm64 image's own programs on an x86_64 build host (binfmt_misc)",
             "qemu-user-static", "qemu-user-static", command="qemu-aarch64-static"),
    HostTool("zstd", "compression", "zstd", "zstd", command="zstd"),
    HostTool("gpg", "signing and keyrings", "gnupg", "gnupg", command="gpg"),
    HostTool("qemu-system-x86_64", "boot tests", "qemu-system-x86", "qemu-system-x86",
             command="qemu-system-x86_64"),
    HostTool("qemu-system-aarch64", "boot tests of arm64 images", "qemu-system-arm", "qemu-system-aarch64",
             command="qemu-system-aarch64"),
    HostTool("qemu-img", "disk images for boot tests", "qemu-utils", "qemu-img", command="qemu-img"),
    HostTool("OVMF", "UEFI firmware for boot tests", "ovmf", "edk2-ovmf", path="/usr/share/OVMF/OVMF_CODE_4M.fd"),
    HostTool("AAVMF", "arm64 UEFI firmware for boot tests", "qemu-efi-aarch64", "edk2-aarch64",
             path="/usr/share/AAVMF/AAVMF_CODE.fd"),
    HostTool("ssh", "log in to booted images", "openssh-client", "openssh", command="ssh"),
    HostTool("ssh-keygen", "throwaway key pairs", "openssh-client", "openssh", command="ssh-keygen"),
    HostTool("nc", "relay the guest's metadata address to the local IMDS", "netcat-openbsd", "openbsd-netcat",
             command="nc"),
    HostTool("chromium", "screenshots of the release page", "chromium", "chromium", command="chromium",
             required=False),
)

# Debian's sbin directories are not on a normal user's PATH, but the tools there work for them.
_EXTRA_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class ToolStatus:
    tool: HostTool
    found: str | None  # where it was found, or None


def locate(tool: HostTool) -> str | None:
    if tool.command is not None:
        return shutil.which(tool.command) or shutil.which(tool.command, path=_EXTRA_PATH)
    assert tool.path is not None
    return tool.path if Path(tool.path).exists() else None


def check_tools() -> list[ToolStatus]:
    return [ToolStatus(tool, locate(tool)) for tool in HOST_TOOLS]


def require(*names: str) -> None:
    """Raise ToolMissingError naming every missing tool (by doctor name) and the packages to install."""
    wanted = [t for t in HOST_TOOLS if t.name in names]
    unknown = set(names) - {t.name for t in wanted}
    if unknown:
        raise ValueError(f"unknown host tools: {sorted(unknown)}")
    missing = [t for t in wanted if locate(t) is None]
    if missing:
        packages = " ".join(sorted({t.debian for t in missing}))
        raise ToolMissingError(
            f"missing host tools: {', '.join(t.name for t in missing)} "
            f"(Debian/Ubuntu: apt-get install {packages}; see `archami doctor`)"
        )


def tool_path(name: str) -> str:
    """The executable of a command tool; raises ToolMissingError when absent."""
    require(name)
    tool = next(t for t in HOST_TOOLS if t.name == name)
    found = locate(tool)
    assert found is not None
    return found


def install_hint(command: str) -> str:
    """How to install the tool that provides `command` (for "not installed" errors)."""
    name = Path(command).name
    tool = next((t for t in HOST_TOOLS if t.command == name or t.name == name), None)
    if tool is None:
        return "see `archami doctor`"
    return f"Debian/Ubuntu: apt-get install {tool.debian}; Arch Linux: pacman -S {tool.arch}"


def install_commands(missing: list[HostTool]) -> list[str]:
    """The commands that install `missing` tools, one per host distro."""
    debian = " ".join(sorted({t.debian for t in missing}))
    arch = " ".join(sorted({t.arch for t in missing}))
    return [f"Debian/Ubuntu: apt-get install {debian}", f"Arch Linux:    pacman -S --needed {arch}"]
