"""Host tools archami runs, which commands run them, and how to install each: the one table behind
`archami doctor` (all of it, or one command's share), the runner's "not installed" errors, and the Makefile's
`deps` target (`APT_PACKAGES` there must equal `apt_packages()`: tests/unit/test_build_doctor.py).
The distros' own tools (mmdebstrap, pacman, their keyrings) come from distro/rules.py.

    python3 -m archami.hosttools --apt-packages     # the Debian packages, one line (standard library only)
"""

from __future__ import annotations

import glob
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from archami.distro.rules import ALL_RULES
from archami.errors import ToolMissingError

# The archami commands that run each group of tools ("tests": only `make test` needs it).
BUILDS = ("build", "release", "demo")
AUDITS = ("audit", *BUILDS)
BOOTS = ("boot", "fleet", "release", "demo")
SIGNS = ("repo", "kernel", "stream", "verify", *BUILDS)
KERNEL = ("kernel",)
TESTS = ("tests",)


@dataclass(frozen=True)
class HostTool:
    name: str  # what `archami doctor` shows
    purpose: str
    debian: str  # Debian/Ubuntu package
    arch: str  # Arch Linux package
    command: str | None = None  # an executable looked up on PATH (and in the sbin dirs)
    path: str | None = None  # or a file that must exist (a glob pattern matches any version)
    required: bool = True  # False: only some definitions or options need it (doctor warns, does not fail)
    used_by: tuple[str, ...] = BUILDS
    host: str | None = None  # only on build hosts of this machine type (its package exists only there)


HOST_TOOLS: tuple[HostTool, ...] = (
    *(HostTool(*tool) for rules in ALL_RULES for tool in rules.host_tools),
    HostTool("arch-test", "mmdebstrap's check that arm64 programs run here (Debian arm64 images)", "arch-test",
             "arch-test", command="arch-test", required=False),
    HostTool("dpkg-architecture", "mmdebstrap's eatmydata hook (the root's multiarch directory)", "dpkg-dev",
             "dpkg", command="dpkg-architecture"),
    HostTool("bsdtar", "package archives", "libarchive-tools", "libarchive", command="bsdtar",
             used_by=("repo", *BUILDS)),
    HostTool("mkfs.ext4", "ext4 root filesystem from a directory", "e2fsprogs", "e2fsprogs", command="mkfs.ext4"),
    HostTool("debugfs", "read ext4 images without mounting", "e2fsprogs", "e2fsprogs", command="debugfs",
             used_by=AUDITS),
    HostTool("mkfs.fat", "EFI system partition", "dosfstools", "dosfstools", command="mkfs.fat"),
    HostTool("mtools", "copy files into the EFI partition without mounting", "mtools", "mtools", command="mcopy"),
    HostTool("sfdisk", "partition tables", "fdisk", "util-linux", command="sfdisk", used_by=AUDITS),
    HostTool("unshare", "run image tools in a throwaway mount namespace", "util-linux", "util-linux",
             command="unshare"),
    HostTool("systemctl", "enable and disable units in the image root", "systemd", "systemd", command="systemctl"),
    HostTool("grub-mkimage", "GRUB core images", "grub-common", "grub", command="grub-mkimage"),
    HostTool("grub i386-pc", "GRUB for BIOS boot", "grub-pc-bin", "grub", path="/usr/lib/grub/i386-pc/boot.img"),
    HostTool("grub x86_64-efi", "GRUB for UEFI boot", "grub-efi-amd64-bin", "grub",
             path="/usr/lib/grub/x86_64-efi/linux.mod"),
    HostTool("grub arm64-efi", "GRUB for arm64 UEFI, for images without GRUB of their own (arm64 hosts)",
             "grub-efi-arm64-bin", "grub", path="/usr/lib/grub/arm64-efi/linux.mod", required=False, host="aarch64"),
    HostTool("qemu-user-static", "run an arm64 image's own programs on an x86_64 build host (arm64 images)",
             "qemu-user-static", "qemu-user-static", command="qemu-aarch64-static", required=False),
    HostTool("zstd", "compression", "zstd", "zstd", command="zstd", used_by=("repo", "kernel", *BUILDS)),
    HostTool("gpg", "signing and keyrings", "gnupg", "gnupg", command="gpg", used_by=SIGNS),
    HostTool("qemu-system-x86_64", "boot tests", "qemu-system-x86", "qemu-system-x86",
             command="qemu-system-x86_64", used_by=BOOTS),
    HostTool("qemu-system-aarch64", "boot tests of arm64 images", "qemu-system-arm", "qemu-system-aarch64",
             command="qemu-system-aarch64", required=False, used_by=BOOTS),
    HostTool("qemu-img", "disk images for boot tests", "qemu-utils", "qemu-img", command="qemu-img", used_by=BOOTS),
    HostTool("OVMF", "UEFI firmware for boot tests", "ovmf", "edk2-ovmf", path="/usr/share/OVMF/OVMF_CODE_4M.fd",
             used_by=BOOTS),
    HostTool("AAVMF", "arm64 UEFI firmware for boot tests (arm64 images)", "qemu-efi-aarch64", "edk2-aarch64",
             path="/usr/share/AAVMF/AAVMF_CODE.fd", required=False, used_by=BOOTS),
    HostTool("ssh", "log in to booted images", "openssh-client", "openssh", command="ssh", used_by=BOOTS),
    HostTool("ssh-keygen", "throwaway key pairs", "openssh-client", "openssh", command="ssh-keygen", used_by=BOOTS),
    HostTool("nc", "relay the guest's metadata address to the local IMDS", "netcat-openbsd", "openbsd-netcat",
             command="nc", used_by=BOOTS),
    HostTool("chromium", "screenshots of the release page (site --screenshot)", "chromium", "chromium",
             command="chromium", required=False, used_by=("site", "release", "demo")),
    # `archami kernel build` (`make bindeb-pkg` and the Arch package): what the kernel's own build runs.
    HostTool("gcc", "compile the kernel", "build-essential", "base-devel", command="gcc", used_by=KERNEL),
    HostTool("make", "the kernel's build system", "build-essential", "base-devel", command="make", used_by=KERNEL),
    HostTool("dpkg-buildpackage", "the kernel's Debian packages (bindeb-pkg)", "build-essential", "dpkg",
             command="dpkg-buildpackage", used_by=KERNEL),
    HostTool("fakeroot", "bindeb-pkg packs as a fake root", "fakeroot", "fakeroot", command="fakeroot",
             used_by=KERNEL),
    HostTool("bc", "kernel build (timeconst)", "bc", "bc", command="bc", used_by=KERNEL),
    HostTool("bison", "kernel build (kconfig parser)", "bison", "bison", command="bison", used_by=("kernel", "tests")),
    HostTool("flex", "kernel build (kconfig lexer)", "flex", "flex", command="flex", used_by=("kernel", "tests")),
    HostTool("xz", "unpack the kernel source tarball", "xz-utils", "xz", command="xz", used_by=KERNEL),
    HostTool("cpio", "kernel build (headers archive)", "cpio", "cpio", command="cpio", used_by=KERNEL),
    HostTool("rsync", "kernel build (headers install)", "rsync", "rsync", command="rsync", used_by=KERNEL),
    HostTool("depmod", "kernel build (module index)", "kmod", "kmod", command="depmod", used_by=KERNEL),
    HostTool("libssl-dev", "kernel build (module signing tools)", "libssl-dev", "openssl",
             path="/usr/include/openssl/ssl.h", used_by=KERNEL),
    HostTool("libelf-dev", "kernel build (objtool)", "libelf-dev", "libelf", path="/usr/include/gelf.h",
             used_by=KERNEL),
    HostTool("linux-source-6.1", "a kernel source tarball for kernel build --source",
             "linux-source-6.1", "linux", path="/usr/src/linux-source-6.1.tar.xz", required=False,
             used_by=("kernel", "tests")),
    HostTool("linux-config-6.1", "Debian's kernel configs (kernel build --base-config)", "linux-config-6.1",
             "linux", path="/usr/src/linux-config-6.1", required=False, used_by=KERNEL),
    # Only the test suite and the Makefile.
    HostTool("makepkg", "makepkg's packages and vercmp's version order, to check archami's against", "makepkg",
             "pacman", command="vercmp", used_by=TESTS),
    HostTool("python3-venv", "the Makefile's virtualenv", "python3-venv", "python",
             path="/usr/lib/python3*/ensurepip/__init__.py", used_by=TESTS),
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
    if glob.has_magic(tool.path):
        return next(iter(sorted(glob.glob(tool.path))), None)
    return tool.path if Path(tool.path).exists() else None


def topics() -> list[str]:
    """Every command (or "tests") some tool is used by, in table order."""
    return list(dict.fromkeys(command for tool in HOST_TOOLS for command in tool.used_by))


def tools_for(command: str | None = None, machine: str | None = None) -> list[HostTool]:
    """The tools `command` runs on a `machine` host (None: every command, the set `make deps` installs;
    this host)."""
    machine = machine or platform.machine()
    return [t for t in HOST_TOOLS
            if (command is None or command in t.used_by) and t.host in (None, machine)]


def check_tools(command: str | None = None) -> list[ToolStatus]:
    return [ToolStatus(tool, locate(tool)) for tool in tools_for(command)]


def apt_packages(machine: str | None = None) -> list[str]:
    """The Debian packages of every tool, sorted: the Makefile installs exactly these (no recommends)."""
    return sorted({tool.debian for tool in tools_for(None, machine)})


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


if __name__ == "__main__":
    # Usable before the virtualenv exists: this module and what it imports are standard library only.
    if sys.argv[1:] != ["--apt-packages"]:
        sys.exit("usage: python3 -m archami.hosttools --apt-packages")
    print(" ".join(apt_packages()))
