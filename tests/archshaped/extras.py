"""Files written for the shaped repository: what Arch's own packages ship and Debian's do not (the
`filesystem` package, alpm hooks, the mkinitcpio stand-in, Arch's pacman.conf), and what Debian's
maintainer scripts would have generated (PAM's common-* files, the CA list, alternatives)."""

from __future__ import annotations

import stat
from pathlib import Path

ASSETS = Path(__file__).parent / "assets"

# path -> (content, mode): a directory when mode has S_IFDIR; or "->target" for a symlink
Files = dict[str, tuple[str, int] | str]
DIR = stat.S_IFDIR


def _asset(name: str) -> str:
    return (ASSETS / name).read_text()


def _hook(description: str, targets: list[str], exec_line: str, *, when: str = "PostTransaction",
          needs_targets: bool = False, operations: tuple[str, ...] = ("Install", "Upgrade")) -> str:
    lines = ["[Trigger]", "Type = Path", *(f"Operation = {op}" for op in operations)]
    lines += [f"Target = {t}" for t in targets]
    lines += ["", "[Action]", f"Description = {description}", f"When = {when}", f"Exec = {exec_line}"]
    if needs_targets:
        lines.append("NeedsTargets")
    return "\n".join(lines) + "\n"


HOOKS = "usr/share/libalpm/hooks"

# Arch's systemd, kmod and ca-certificates packages keep the system consistent with alpm hooks
# (sysusers, tmpfiles, hwdb, depmod, the CA bundle) where Debian's use maintainer scripts and triggers.
PACKAGE_FILES: dict[str, Files] = {
    "systemd": {
        # Arch's systemd ships these 0700 (its tmpfiles credstore.conf enforces it; pacman -Qkk checks it).
        "etc/credstore": ("", DIR | 0o700),
        "etc/credstore.encrypted": ("", DIR | 0o700),
        f"{HOOKS}/20-systemd-sysusers.hook": (_hook(
            "Creating system user accounts...", ["usr/lib/sysusers.d/*.conf"], "/usr/bin/systemd-sysusers"), 0o644),
        f"{HOOKS}/30-systemd-tmpfiles.hook": (_hook(
            "Creating temporary files...", ["usr/lib/tmpfiles.d/*.conf"], "/usr/bin/systemd-tmpfiles --create"), 0o644),
        f"{HOOKS}/30-systemd-hwdb.hook": (_hook(
            "Updating udev hardware database...", ["usr/lib/udev/hwdb.d/*"], "/usr/bin/systemd-hwdb --usr update",
            operations=("Install", "Upgrade", "Remove")), 0o644),
    },
    "kmod": {
        f"{HOOKS}/60-depmod.hook": (_hook(
            "Updating module dependencies...", ["usr/lib/modules/*/"], "/usr/share/libalpm/scripts/depmod",
            needs_targets=True, operations=("Install", "Upgrade", "Remove")), 0o644),
        "usr/share/libalpm/scripts/depmod": (
            "#!/bin/bash\n# Run depmod once per kernel whose modules changed (targets: usr/lib/modules/<ver>/...).\n"
            "declare -A seen\nwhile read -r target; do\n"
            "  kver=${target#usr/lib/modules/}; seen[${kver%%/*}]=1\ndone\n"
            "for kver in \"${!seen[@]}\"; do\n"
            "  [[ -d /usr/lib/modules/$kver/kernel ]] && depmod \"$kver\"\ndone\nexit 0\n", 0o755),
    },
    "ca-certificates": {
        f"{HOOKS}/40-update-ca-certificates.hook": (_hook(
            "Rebuilding certificate stores...", ["usr/share/ca-certificates/*"],
            "/usr/bin/update-ca-certificates --fresh"), 0o644),
    },
    "pam": {
        "etc/environment": ("", 0o644),  # Arch's pam ships it (pam_env reads it on every login)
        "etc/pam.d/common-auth": (
            "auth\t[success=1 default=ignore]\tpam_unix.so nullok\nauth\trequisite\tpam_deny.so\n"
            "auth\trequired\tpam_permit.so\n", 0o644),
        "etc/pam.d/common-account": (
            "account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so\n"
            "account\trequisite\tpam_deny.so\naccount\trequired\tpam_permit.so\n", 0o644),
        "etc/pam.d/common-password": (
            "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\n"
            "password\trequisite\tpam_deny.so\npassword\trequired\tpam_permit.so\n", 0o644),
        "etc/pam.d/common-session": (
            "session\t[default=1]\tpam_permit.so\nsession\trequisite\tpam_deny.so\n"
            "session\trequired\tpam_permit.so\nsession\trequired\tpam_unix.so\n", 0o644),
        "etc/pam.d/common-session-noninteractive": (
            "session\t[default=1]\tpam_permit.so\nsession\trequisite\tpam_deny.so\n"
            "session\trequired\tpam_permit.so\nsession\trequired\tpam_unix.so\n", 0o644),
    },
    "pacman": {
        "etc/pacman.conf": (_asset("pacman.conf"), 0o644),
        "usr/lib/sysusers.d/alpm.conf": ('u alpm - "Arch Linux Package Management" - -\n', 0o644),
    },
    "pinentry": {
        # Arch's pinentry owns /usr/bin/pinentry: a wrapper that picks an installed front end.
        "usr/bin/pinentry": (
            "#!/bin/bash\n# Run the first installed pinentry front end.\n"
            "for p in pinentry-curses pinentry-tty; do\n"
            "  command -v \"$p\" >/dev/null && exec \"$p\" \"$@\"\ndone\necho 'no pinentry front end' >&2; exit 1\n",
            0o755),
    },
    "openssh": {
        # Arch's unit that makes missing host keys before sshd starts (archami masks it when its agent does).
        "usr/lib/systemd/system/sshdgenkeys.service": (
            "[Unit]\nDescription=SSH Key Generation\nConditionPathExists=|!/etc/ssh/ssh_host_ecdsa_key\n"
            "ConditionPathExists=|!/etc/ssh/ssh_host_ed25519_key\nConditionPathExists=|!/etc/ssh/ssh_host_rsa_key\n\n"
            "[Service]\nExecStart=/usr/bin/ssh-keygen -A\nType=oneshot\nRemainAfterExit=yes\n", 0o644),
    },
}


def mkinitcpio_files() -> Files:
    return {
        "usr/bin/mkinitcpio": (_asset("mkinitcpio"), 0o755),
        "etc/mkinitcpio.conf": (_asset("mkinitcpio.conf"), 0o644),
        "etc/mkinitcpio.conf.d": ("", DIR | 0o755),
        "etc/mkinitcpio.d": ("", DIR | 0o755),
        "usr/share/mkinitcpio/hook.preset": (_asset("hook.preset"), 0o644),
        "usr/share/libalpm/scripts/mkinitcpio": (_asset("mkinitcpio-alpm"), 0o755),
        f"{HOOKS}/90-mkinitcpio-install.hook": (
            "[Trigger]\nType = Path\nOperation = Install\nOperation = Upgrade\nOperation = Remove\n"
            "Target = usr/lib/initcpio/*\nTarget = usr/lib/firmware/*\nTarget = usr/src/*/dkms.conf\n\n"
            "[Trigger]\nType = Path\nOperation = Install\nOperation = Upgrade\nTarget = usr/lib/modules/*/vmlinuz\n\n"
            "[Action]\nDescription = Updating linux initcpios...\nWhen = PostTransaction\n"
            "Exec = /usr/share/libalpm/scripts/mkinitcpio install\nNeedsTargets\n", 0o644),
        f"{HOOKS}/60-mkinitcpio-remove.hook": (
            "[Trigger]\nType = Path\nOperation = Remove\nTarget = usr/lib/modules/*/vmlinuz\n\n"
            "[Action]\nDescription = Removing linux initcpios...\nWhen = PreTransaction\n"
            "Exec = /usr/share/libalpm/scripts/mkinitcpio remove\nNeedsTargets\n", 0o644),
    }


PASSWD = """root:x:0:0::/root:/usr/bin/bash
bin:x:1:1::/:/usr/bin/nologin
daemon:x:2:2::/:/usr/bin/nologin
mail:x:8:12::/var/spool/mail:/usr/bin/nologin
ftp:x:14:11::/srv/ftp:/usr/bin/nologin
http:x:33:33::/srv/http:/usr/bin/nologin
nobody:x:65534:65534:Kernel Overflow User:/:/usr/bin/nologin
"""
GROUPS = ("root:0:root", "sys:3:bin", "mem:8:", "ftp:11:", "mail:12:", "log:19:", "smmsp:25:", "proc:26:",
          "games:50:", "lock:54:", "network:90:", "floppy:94:", "scanner:96:", "power:98:", "adm:999:daemon",
          "wheel:998:", "utmp:997:", "audio:996:", "disk:995:", "input:994:", "kmem:993:", "kvm:992:", "lp:991:",
          "optical:990:", "render:989:", "sgx:988:", "storage:987:", "tty:5:", "uucp:986:", "video:985:",
          "users:984:", "bin:1:daemon", "daemon:2:bin", "http:33:", "nobody:65534:")  # fmt: skip

OS_RELEASE = """NAME="Arch Linux"
PRETTY_NAME="Arch Linux"
ID=arch
BUILD_ID=rolling
ANSI_COLOR="38;2;23;147;209"
HOME_URL="https://archlinux.org/"
DOCUMENTATION_URL="https://wiki.archlinux.org/"
LOGO=archlinux-logo
"""


def filesystem_files() -> Files:
    """Arch's `filesystem`: the directory tree, the merged-/usr links, and the base /etc files."""
    files: Files = {
        "bin": "->usr/bin", "sbin": "->usr/bin", "lib": "->usr/lib", "lib64": "->usr/lib",
        "usr/sbin": "->bin", "usr/lib64": "->lib", "var/run": "->../run", "var/lock": "->../run/lock",
        "etc/mtab": "->../proc/self/mounts", "etc/os-release": "->../usr/lib/os-release",
    }
    for directory, mode in (
        ("boot", 0o755), ("dev", 0o755), ("etc/skel", 0o755), ("etc/profile.d", 0o755), ("home", 0o755),
        ("mnt", 0o755), ("opt", 0o755), ("proc", 0o555), ("root", 0o750), ("run", 0o755), ("srv", 0o755),
        ("sys", 0o555), ("tmp", 0o1777), ("usr/bin", 0o755), ("usr/include", 0o755), ("usr/lib", 0o755),
        ("usr/local/bin", 0o755), ("usr/local/lib", 0o755), ("usr/local/share", 0o755), ("usr/share", 0o755),
        ("usr/src", 0o755), ("var/cache", 0o755), ("var/empty", 0o755), ("var/lib", 0o755), ("var/local", 0o755),
        ("var/log", 0o755), ("var/opt", 0o755), ("var/spool/mail", 0o1777), ("var/tmp", 0o1777),
    ):  # fmt: skip
        files[directory] = ("", DIR | mode)
    files.update({
        "etc/passwd": (PASSWD, 0o644),
        "etc/group": ("".join(f"{g.split(':')[0]}:x:{g.split(':')[1]}:{g.split(':')[2]}\n" for g in GROUPS), 0o644),
        "etc/shadow": ("".join(f"{line.split(':')[0]}:*::0:99999:7:::\n" for line in PASSWD.splitlines()), 0o600),
        "etc/gshadow": ("".join(f"{g.split(':')[0]}:!*::{g.split(':')[2]}\n" for g in GROUPS), 0o600),
        "etc/hosts": ("# Static table lookup for hostnames.\n# See hosts(5) for details.\n", 0o644),
        "etc/shells": ("# Pathnames of valid login shells.\n/bin/sh\n/bin/bash\n/usr/bin/sh\n/usr/bin/bash\n", 0o644),
        "etc/nsswitch.conf": (
            "passwd: files systemd\ngroup: files [SUCCESS=merge] systemd\nshadow: files systemd\n"
            "gshadow: files systemd\n\npublickey: files\n\n"
            "hosts: mymachines resolve [!UNAVAIL=return] files myhostname dns\nnetworks: files\n\n"
            "protocols: files\nservices: files\nethers: files\nrpc: files\n\nnetgroup: files\n", 0o644),
        "etc/ld.so.conf": ("# Dynamic linker/loader configuration.\ninclude /etc/ld.so.conf.d/*.conf\n", 0o644),
        "etc/profile": (_asset("profile"), 0o644),
        "etc/resolv.conf": ("# Resolver configuration file.\n# See resolv.conf(5) for details.\n", 0o644),
        "etc/fstab": ("# Static information about the filesystems.\n# See fstab(5) for details.\n", 0o644),
        "etc/issue": ("Arch Linux \\r (\\l)\n\n", 0o644),
        "etc/motd": ("", 0o644),
        "usr/lib/os-release": (OS_RELEASE, 0o644),
    })
    return files


FILESYSTEM_BACKUP = [
    "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/hosts", "etc/shells", "etc/nsswitch.conf",
    "etc/ld.so.conf", "etc/profile", "etc/resolv.conf", "etc/fstab", "etc/issue", "etc/motd",
]  # fmt: skip


def keyring_install_script() -> str:
    # Like Arch's archlinux-keyring.install: refresh a keyring that is already initialised.
    return (
        "post_upgrade() {\n  if usr/bin/pacman-key -l >/dev/null 2>&1; then\n"
        "    usr/bin/pacman-key --populate archlinux\n  fi\n}\n\n"
        "post_install() {\n  if [ -x usr/bin/pacman-key ]; then\n    post_upgrade\n  fi\n}\n"
    )
