"""Public keys from metadata: valid lines kept in order, malformed ones refused, duplicates dropped."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from archami.firstboot.agent.context import Context
from archami.firstboot.agent.settings import Settings
from archami.firstboot.agent.sshkeys import clean_keys, parse_key, write_authorized_keys


def openssh(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, comment: str) -> str:
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} {comment}"


ED = openssh(ed25519.Ed25519PrivateKey.generate(), "alice@laptop")
ED2 = openssh(ed25519.Ed25519PrivateKey.generate(), "bob")
RSA = openssh(rsa.generate_private_key(public_exponent=65537, key_size=1024), "carol")
ECDSA = openssh(ec.generate_private_key(ec.SECP256R1()), "dave")


@pytest.mark.parametrize("line", [ED, RSA, ECDSA, ED.rsplit(" ", 1)[0]])
def test_valid_keys_parse(line: str) -> None:
    parsed = parse_key(line)
    assert isinstance(parsed, tuple)
    assert parsed[0] == line.split()[0]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("garbage", "not '<type>"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "unknown key type"),
        ("ssh-ed25519 not*base64!", "not base64"),
        (f"ssh-rsa {ED.split()[1]} mislabelled", "does not match its type"),
        (f"ssh-ed25519 {ED.split()[1][:20]}", "does not match its type"),
        (f"ssh-ed25519 {ED.split()[1][:41]}", "not base64"),
        (f'command="rm -rf /" {ED}', "unknown key type"),
        (f"{ED}\x1b[2J", "control characters"),
        (f"ssh-ed25519 {base64.b64encode(b'xx').decode()}", "does not match"),
    ],
)
def test_malformed_keys_refused(line: str, reason: str) -> None:
    parsed = parse_key(line)
    assert isinstance(parsed, str)
    assert reason in parsed


def _blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(len(f).to_bytes(4, "big") + f for f in fields)).decode()


def test_a_key_type_this_agent_does_not_know_is_kept_when_its_blob_names_it() -> None:
    # A newer OpenSSH in the image may accept algorithms this agent has never heard of: no lock-out for that.
    line = f"mldsa65-ed25519@openssh.com {_blob(b'mldsa65-ed25519@openssh.com', b'p' * 40, b'q' * 32)} eve"
    assert parse_key(line) == tuple(line.split(" ", 2))
    other = f"mldsa65-ed25519@openssh.com {_blob(b'ssh-ed25519', b'q' * 32)} eve"
    assert "does not match its type" in str(parse_key(other))
    assert "no key" in str(parse_key(f"new-type {_blob(b'new-type')}"))
    # An authorized_keys option is never taken for a type, whatever follows it.
    for option in ("restrict,pty", 'from="10.0.0.1"', "no-pty=x"):
        assert "unknown key type" in str(parse_key(f"{option} {_blob(option.encode(), b'k')}"))


def test_clean_keys_keeps_order_drops_duplicates_and_junk(capfd: pytest.CaptureFixture[str]) -> None:
    texts = [ED + "\n", "not a key\n", RSA, ED.replace("alice@laptop", "alice-again"), f"# comment\n\n{ED2}\n"]
    assert clean_keys(texts) == [ED, RSA, ED2]
    err = capfd.readouterr().err
    assert "skipped a malformed public key" in err
    assert "dropped a duplicate ssh-ed25519 key" in err


def make_root(tmp_path: Path, passwd: str) -> Context:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(passwd)
    return Context(str(tmp_path), Settings({"default_user": "arch"}))


def test_authorized_keys_written_atomically_with_owner_and_modes(tmp_path: Path) -> None:
    uid, gid = os.getuid(), os.getgid()
    ctx = make_root(tmp_path, f"root:x:0:0::/root:/bin/sh\narch:x:{uid}:{gid}::/home/arch:/bin/bash\n")
    (tmp_path / "home/arch/.ssh").mkdir(parents=True, mode=0o755)
    assert write_authorized_keys(ctx, [ED, RSA]) == "2 key(s) for arch"
    target = tmp_path / "home/arch/.ssh/authorized_keys"
    assert target.read_text() == f"{ED}\n{RSA}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert (target.stat().st_uid, target.stat().st_gid) == (uid, gid)
    write_authorized_keys(ctx, [ED2])
    assert target.read_text() == f"{ED2}\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["authorized_keys"]  # no temp files left


def test_unknown_default_user_is_an_error(tmp_path: Path) -> None:
    ctx = make_root(tmp_path, "root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(LookupError):
        write_authorized_keys(ctx, [ED])


def test_ssh_dir_symlink_is_not_followed(tmp_path: Path) -> None:
    """A previous instance's user points ~/.ssh at a system directory: root must not chmod/chown it."""
    uid, gid = os.getuid(), os.getgid()
    ctx = make_root(tmp_path, f"arch:x:{uid}:{gid}::/home/arch:/bin/bash\n")
    victim = tmp_path / "etc/victim"
    victim.mkdir(mode=0o755)
    (tmp_path / "home/arch").mkdir(parents=True)
    (tmp_path / "home/arch/.ssh").symlink_to(victim)
    write_authorized_keys(ctx, [ED])
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755
    assert not (victim / "authorized_keys").exists()
    assert not (tmp_path / "home/arch/.ssh").is_symlink()
    assert (tmp_path / "home/arch/.ssh/authorized_keys").read_text() == ED + "\n"
