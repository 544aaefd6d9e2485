"""The default user's authorized_keys from metadata, and the instance's SSH host keys."""

from __future__ import annotations

import binascii
import os
import re

from .context import Context
from .files import log, makedirs, write_atomic

# Public key algorithms OpenSSH accepts in authorized_keys (DSA is gone from current OpenSSH), with the
# number of SSH strings their key blob holds (RFC 4253 6.6, RFC 5656, RFC 8709, OpenSSH PROTOCOL.u2f).
KEY_TYPES = {
    "ssh-ed25519": 2,
    "ssh-rsa": 3,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "sk-ssh-ed25519@openssh.com": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
}
# A type this agent does not know may be one the image's newer OpenSSH does: such a key is kept when its
# name looks like an algorithm name and its blob names that same type. No '=', quotes or commas: nothing
# that carries an option's argument (command=, from=); a bare word sshd would read as an option (restrict)
# leaves the line unusable to sshd, never more permissive. DSA is refused: OpenSSH removed it.
_TYPE_NAME = re.compile(r"[a-z0-9][a-z0-9.@+-]{0,63}")
REMOVED_TYPES = ("ssh-dss",)


def _ssh_strings(raw: bytes) -> list[bytes] | None:
    """Split a key blob into its length-prefixed strings; None unless they cover it exactly."""
    fields = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            return None
        size = int.from_bytes(raw[offset : offset + 4], "big")
        offset += 4
        if offset + size > len(raw):
            return None
        fields.append(raw[offset : offset + size])
        offset += size
    return fields


def parse_key(line: str) -> tuple[str, str, str] | str:
    """(type, base64 blob, comment) for a valid OpenSSH public key line, else the reason it is refused.

    Lines with options (command=..., from=...) are refused: metadata carries plain keys, and a forged option
    would run commands for whoever logs in.
    """
    fields = line.strip().split(None, 2)
    if len(fields) < 2:
        return "not '<type> <base64> [comment]'"
    key_type, blob = fields[0], fields[1]
    if key_type in REMOVED_TYPES or not _TYPE_NAME.fullmatch(key_type):
        return f"unknown key type {key_type[:40]!r}"
    try:
        raw = binascii.a2b_base64(blob, strict_mode=True)
    except binascii.Error:
        return "key data is not base64"
    # The blob names its own type and holds a fixed number of fields: catches truncated or mislabelled keys.
    parts = _ssh_strings(raw)
    if not parts or parts[0] != key_type.encode() or len(parts) != KEY_TYPES.get(key_type, len(parts)):
        return "key data does not match its type"
    if len(parts) < 2:
        return "key data holds no key"
    if key_type.endswith("ed25519") and len(parts[1]) != 32:
        return "ed25519 key of the wrong length"
    comment = fields[2] if len(fields) > 2 else ""
    if any(ord(c) < 32 or ord(c) == 127 for c in comment):
        return "control characters in the comment"
    return key_type, blob, comment


def clean_keys(texts: list[str]) -> list[str]:
    """Valid key lines from the metadata texts, in order, duplicates (same type and blob) dropped."""
    seen: set[tuple[str, str]] = set()
    lines: list[str] = []
    for text in texts:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parsed = parse_key(line)
            if isinstance(parsed, str):
                log(f"skipped a malformed public key (line {number}: {parsed})")
                continue
            key_type, blob, comment = parsed
            if (key_type, blob) in seen:
                log(f"dropped a duplicate {key_type} key")
                continue
            seen.add((key_type, blob))
            lines.append(" ".join(part for part in (key_type, blob, comment) if part))
    return lines


def write_authorized_keys(ctx: Context, lines: list[str]) -> str:
    """Replace the default user's authorized_keys with `lines` (owner-only modes, right owner)."""
    user = ctx.user(ctx.settings.default_user)
    ssh_dir = ctx.path(os.path.join(user.home, ".ssh"))
    if os.path.islink(ssh_dir):
        # A symlink left by a previous instance's user would make root chmod/chown its target (say /etc).
        log(f"removed the symlink {ssh_dir} -> {os.readlink(ssh_dir)}")
        os.unlink(ssh_dir)
    makedirs(ssh_dir, 0o700, user.uid, user.gid)
    data = "".join(line + "\n" for line in lines).encode()
    write_atomic(os.path.join(ssh_dir, "authorized_keys"), data, 0o600, user.uid, user.gid)
    return f"{len(lines)} key(s) for {user.name}"


def host_key_path(ctx: Context, key_type: str) -> str:
    return ctx.path(f"/etc/ssh/ssh_host_{key_type}_key")


def remove_host_keys(ctx: Context) -> int:
    """Remove every SSH host key (another instance's identity); returns how many files went."""
    directory = ctx.path("/etc/ssh")
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:  # ssh_host_*_key and ssh_host_*_key.pub (no glob: it costs an import per boot)
        if name.startswith("ssh_host_") and (name.endswith("_key") or name.endswith("_key.pub")):
            os.unlink(os.path.join(directory, name))
            removed += 1
    return removed


def generate_host_key(ctx: Context, key_type: str) -> bool:
    """Generate one host key with ssh-keygen unless present; written under temp names, then renamed."""
    final = host_key_path(ctx, key_type)
    if os.path.exists(final):
        return False
    import subprocess  # only when a key is due: keeps every later boot's start-up lean

    directory = os.path.dirname(final)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = os.path.join(directory, f".ssh_host_{key_type}_key.archami-{os.getpid()}")
    for stale in (tmp, tmp + ".pub"):
        if os.path.exists(stale):
            os.unlink(stale)
    try:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"root@{ctx.hostname()}", "-f", tmp],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.replace(tmp + ".pub", final + ".pub")  # public half first: the private key marks completion
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, tmp + ".pub"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return True
