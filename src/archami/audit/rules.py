"""What must not ship in a public AMI, after the AWS Marketplace AMI policy: no credentials (authorized
keys, SSH host and user private keys, GnuPG secret keys, password hashes), key-only SSH, no per-instance
identity (machine-id), no shell history, no leftovers of the machine that built it; and it must be a bootable
system (kernel, init, SSH server). Secrets are also found by content (audit/secrets.py), not only by name.

Each rule reads an `FsView` and yields findings; `RULES` is the ordered list `audit` runs.
"""

from __future__ import annotations

import fnmatch
import posixpath
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from archami.artifacts import AuditFinding
from archami.audit import sshd
from archami.audit.fsview import Entry, FsView, read_followed, resolve
from archami.audit.secrets import RULE_IDS as SECRET_RULE_IDS
from archami.audit.secrets import secret_contents
from archami.distro.rules import ALL_RULES

Rule = Callable[[FsView], Iterator[AuditFinding]]

HISTORY_NAMES = frozenset({
    ".bash_history", ".zsh_history", ".sh_history", ".ash_history", ".history", ".histfile",
    ".python_history", ".mysql_history", ".psql_history", ".sqlite_history", ".lesshst", ".node_repl_history",
})
USER_PRIVATE_KEY_NAMES = frozenset({"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"})
GNUPG_DIR_NAMES = frozenset({"gnupg", ".gnupg"})
PACKAGE_SUFFIXES = (".deb", ".pkg.tar.zst", ".pkg.tar.xz", ".pkg.tar.gz", ".pkg.tar")
PACKAGE_CACHES = tuple(path for rules in ALL_RULES for path in rules.package_caches)
SCRATCH_DIRS = ("/tmp", "/var/tmp")
# Left by bootstrap tools or a build and harmful in an instance (policy-rc.d stops services from starting).
LEFTOVER_PATHS = ("/usr/sbin/policy-rc.d", "/var/cache/archami")
# Text in package manager configuration that only makes sense on the build machine (e.g. a bootstrap tool's
# options kept on purpose are fine unless they point at the build's proxy or caches).
HOST_MARKERS = ("::proxy", "/var/cache/archami")
CONFIG_DIRS = tuple(path for rules in ALL_RULES for path in rules.config_dirs)


def _name(entry: Entry) -> str:
    return posixpath.basename(entry.path)


def _finding(rule: str, path: str, detail: str) -> AuditFinding:
    return AuditFinding(rule=rule, path=path, detail=detail)


def authorized_keys(view: FsView) -> Iterator[AuditFinding]:
    for entry in view.entries():
        if _name(entry) in ("authorized_keys", "authorized_keys2") and entry.kind == "file" and entry.size > 0:
            yield _finding("ssh-authorized-keys", entry.path, f"{entry.size} bytes of authorized keys")


def ssh_host_keys(view: FsView) -> Iterator[AuditFinding]:
    for entry in view.entries():
        name = _name(entry)
        if posixpath.dirname(entry.path) == "/etc/ssh" and name.startswith("ssh_host_") and "_key" in name:
            kind = "public" if name.endswith(".pub") else "private"
            yield _finding("ssh-host-key", entry.path, f"{kind} host key: every instance would share it")


def user_private_keys(view: FsView) -> Iterator[AuditFinding]:
    for entry in view.entries():
        if entry.kind == "file" and _name(entry) in USER_PRIVATE_KEY_NAMES:
            yield _finding("ssh-private-key", entry.path, "an SSH private key")


def machine_id(view: FsView) -> Iterator[AuditFinding]:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        entry = view.entry(path)
        if entry is None or entry.kind != "file":
            continue  # a symlink (dbus -> /etc/machine-id) is fine
        content = (view.read(path) or b"").strip()
        if content and content != b"uninitialized":
            yield _finding("machine-id", path, "not empty: every instance would share one machine-id")


def gnupg_secret_keys(view: FsView) -> Iterator[AuditFinding]:
    """Any GnuPG home (pacman's /etc/pacman.d/gnupg, ~/.gnupg, ...) holding secret key material."""
    homes = {e.path for e in view.entries() if e.kind == "dir" and _name(e) in GNUPG_DIR_NAMES}
    for entry in view.entries():
        parent = posixpath.dirname(entry.path)
        if entry.kind != "file" or entry.size == 0:
            continue
        if posixpath.basename(parent) == "private-keys-v1.d" and posixpath.dirname(parent) in homes:
            yield _finding("gnupg-secret-key", entry.path, "a GnuPG secret key (keyring master key)")
        elif parent in homes and _name(entry) == "secring.gpg":
            yield _finding("gnupg-secret-key", entry.path, "a GnuPG secret keyring")


def shell_history(view: FsView) -> Iterator[AuditFinding]:
    for entry in view.entries():
        if entry.kind == "file" and _name(entry) in HISTORY_NAMES and entry.size > 0:
            yield _finding("shell-history", entry.path, f"{entry.size} bytes of history")


def password_hashes(view: FsView) -> Iterator[AuditFinding]:
    shadow = read_followed(view, "/etc/shadow")
    for line in (shadow or b"").decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            continue
        user, password = fields[0], fields[1]
        unlocked = password.lstrip("!")
        if password == "":
            yield _finding("empty-password", "/etc/shadow", f"{user} can log in without a password")
        elif unlocked not in ("", "*"):
            yield _finding("password-hash", "/etc/shadow", f"{user} has a password hash")


def ssh_password_authentication(view: FsView) -> Iterator[AuditFinding]:
    config = sshd.parse(view)
    if config is None:
        return  # no OpenSSH server in the image
    value, where = config.effective("passwordauthentication")
    if value != "no":
        yield _finding("ssh-password-authentication", where, f"PasswordAuthentication {value} ({where})")
    for keyword, value, path in config.match_settings:
        if keyword == "passwordauthentication" and value != "no":
            yield _finding("ssh-password-authentication", path, f"a Match block sets PasswordAuthentication {value}")
    empty, where = config.effective("permitemptypasswords")
    if empty != "no":
        yield _finding("ssh-password-authentication", where, "PermitEmptyPasswords yes")


def host_leftovers(view: FsView, host_root: Path = Path("/")) -> Iterator[AuditFinding]:
    """Traces of the build machine: its resolv.conf or hostname copied in, bootstrap and build leftovers."""
    resolv = view.entry("/etc/resolv.conf")
    if resolv is not None and resolv.kind == "file":
        content = view.read("/etc/resolv.conf") or b""
        host_resolv = _host_file(host_root / "etc/resolv.conf")
        servers = [line.split()[1] for line in content.decode(errors="replace").splitlines()
                   if line.startswith("nameserver") and len(line.split()) > 1]
        if host_resolv and content.strip() == host_resolv.strip():
            yield _finding("build-host-leftover", "/etc/resolv.conf", "copied from the build host")
        elif any(server not in ("127.0.0.53", "127.0.0.54") for server in servers):
            yield _finding("build-host-leftover", "/etc/resolv.conf", f"static nameservers {', '.join(servers)}")
    hostname = (read_followed(view, "/etc/hostname") or b"").strip()
    if hostname and hostname.decode(errors="replace") == socket.gethostname():
        yield _finding("build-host-leftover", "/etc/hostname", f"the build host's name {hostname.decode()!r}")
    for path in LEFTOVER_PATHS:
        if view.entry(path) is not None:
            yield _finding("build-host-leftover", path, "left by the bootstrap or the build")
    for entry in view.entries():
        parent = posixpath.dirname(entry.path)
        if parent in PACKAGE_CACHES and entry.kind == "file" and _name(entry).endswith(PACKAGE_SUFFIXES):
            yield _finding("package-cache", entry.path, "downloaded package left in the cache")
        elif parent in SCRATCH_DIRS:
            yield _finding("build-host-leftover", entry.path, f"left in {parent}")
        elif parent in CONFIG_DIRS and entry.kind == "file":
            text = (view.read(entry.path) or b"").decode(errors="replace").lower()
            markers = [marker for marker in HOST_MARKERS if marker in text]
            if markers:
                found = ", ".join(markers)
                yield _finding("build-host-leftover", entry.path, f"package manager settings of the build: {found}")


# A bootable EC2 system: a kernel for the boot loader, an init for the kernel, an SSH server to log in with.
KERNELS = ("/vmlinuz", "/boot/vmlinuz-*", "/boot/Image", "/boot/Image-*", "/usr/lib/modules/*/vmlinuz")
INITS = ("/sbin/init", "/usr/sbin/init", "/usr/bin/init", "/usr/lib/systemd/systemd", "/lib/systemd/systemd")
SSH_SERVERS = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd")


def _present(view: FsView, paths: tuple[str, ...]) -> bool:
    """Whether any of `paths` (globs allowed) is, after following symlinks inside the image, a regular file."""
    for pattern in paths:
        if "*" in pattern:
            parent = posixpath.dirname(pattern.split("*", 1)[0].rstrip("/")) or "/"
            names = [e.path for e in view.entries() if e.path.startswith(parent) and fnmatch.fnmatchcase(e.path,
                                                                                                         pattern)]
        else:
            names = [pattern]
        for name in names:
            entry = view.entry(resolve(view, name))
            if entry is not None and entry.kind == "file" and entry.size > 0:
                return True
    return False


def bootable_system(view: FsView) -> Iterator[AuditFinding]:
    """An image that cannot boot to an SSH login is not an AMI, however clean it is."""
    for paths, what in ((KERNELS, "no kernel"), (INITS, "no init"), (SSH_SERVERS, "no SSH server")):
        if not _present(view, paths):
            yield _finding("not-bootable", paths[0], f"{what} (looked for {', '.join(paths)})")


def _host_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


RULES: tuple[Rule, ...] = (
    bootable_system,
    authorized_keys,
    ssh_host_keys,
    user_private_keys,
    machine_id,
    gnupg_secret_keys,
    shell_history,
    password_hashes,
    ssh_password_authentication,
    host_leftovers,
    secret_contents,
)
RULE_IDS = (
    "not-bootable",
    "ssh-authorized-keys", "ssh-host-key", "ssh-private-key", "machine-id", "gnupg-secret-key", "shell-history",
    "password-hash", "empty-password", "ssh-password-authentication", "build-host-leftover", "package-cache",
    *SECRET_RULE_IDS,
)
