"""Boot-time work left out of the image (image/boottune.py, DebianBackend.tune_boot and its initramfs hook),
on temporary roots; the hook runs with sh against this machine's own udev rules."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from archami.distro.base import BuildContext
from archami.distro.debian import INITRAMFS_HOOK_TEXT, DebianBackend
from archami.image import boottune
from archami.image.reproducible import clamp_times

EPOCH = 1_795_542_068


def stamp_ns(root: Path, path: str) -> int:
    """TIMESTAMP_NSEC= of a stamp, as systemd reads it (the rest of the file is comments)."""
    for line in (root / path.lstrip("/")).read_text().splitlines():
        if line.startswith("TIMESTAMP_NSEC="):
            return int(line.split("=", 1)[1])
    raise AssertionError(f"no TIMESTAMP_NSEC in {path}")


@pytest.mark.parametrize("usr_age", ["built after the epoch", "packaged before the epoch"])
def test_stamps_say_the_image_is_up_to_date_with_usr(tmp_path: Path, usr_age: str) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "var").mkdir()
    usr_ns = (EPOCH + 3600) * 10**9 + 123 if usr_age == "built after the epoch" else (EPOCH - 86400) * 10**9
    os.utime(tmp_path / "usr", ns=(usr_ns, usr_ns))
    boottune.write_update_stamps(tmp_path, EPOCH)
    clamp_times(tmp_path, EPOCH)  # what the reproducible build does to the root next
    usr = os.lstat(tmp_path / "usr").st_mtime_ns
    for stamp in boottune.UPDATE_STAMPS:
        # systemd's ConditionNeedsUpdate=: true only when /usr is newer than the stamp (mtime, then
        # TIMESTAMP_NSEC when the seconds tie): equal means the boot skips ldconfig, hwdb and catalog rebuilds.
        assert os.lstat(tmp_path / stamp.lstrip("/")).st_mtime_ns == usr
        assert stamp_ns(tmp_path, stamp) == usr


def test_stamps_are_the_same_in_two_builds(tmp_path: Path) -> None:
    texts = []
    for build in ("one", "two"):
        root = tmp_path / build
        for directory in ("usr", "etc", "var"):
            (root / directory).mkdir(parents=True)  # now: both after the epoch, a different ns each time
        boottune.write_update_stamps(root, EPOCH)
        texts.append([(root / s.lstrip("/")).read_bytes() for s in boottune.UPDATE_STAMPS])
    assert texts[0] == texts[1]


def test_a_generator_the_image_has_is_masked(tmp_path: Path) -> None:
    generators = tmp_path / boottune.GENERATOR_DIR
    generators.mkdir(parents=True)
    (generators / "systemd-ssh-generator").write_text("")
    assert boottune.mask_generators(tmp_path, ("systemd-ssh-generator", "not-installed-generator")) == [
        "systemd-ssh-generator"]
    mask = tmp_path / "etc/systemd/system-generators/systemd-ssh-generator"
    assert mask.is_symlink() and os.readlink(mask) == "/dev/null"  # systemd's mask of a generator
    assert not (tmp_path / "etc/systemd/system-generators/not-installed-generator").exists()


def test_debian_drops_e2scrub_reap_and_the_second_sshd_start(tmp_path: Path) -> None:
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    for unit in ("e2scrub_reap.service", "ssh.service"):
        (wants / unit).symlink_to(f"/usr/lib/systemd/system/{unit}")
    (tmp_path / "usr/lib/systemd/system").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/system/ssh.service").write_text(
        "[Service]\nExecStartPre=/usr/sbin/sshd -t\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n")
    ctx = BuildContext(spec=None, root=tmp_path, work=tmp_path, cache=tmp_path,  # type: ignore[arg-type]
                       log=logging.getLogger("test"))
    DebianBackend().tune_boot(ctx)
    assert sorted(p.name for p in wants.iterdir()) == ["ssh.service"]
    dropins = list((tmp_path / "etc/systemd/system/ssh.service.d").glob("*.conf"))
    assert len(dropins) == 1
    lines = dropins[0].read_text().splitlines()
    # An empty assignment resets the list: the unit's own `sshd -t` no longer runs before sshd.
    assert lines.index("ExecStartPre=") > lines.index("[Service]")


@pytest.mark.skipif(not Path("/usr/lib/udev/rules.d/99-systemd.rules").exists(), reason="no systemd udev rules here")
def test_initramfs_hook_drops_hwdb_and_adds_systemd_tags(tmp_path: Path) -> None:
    dest = tmp_path / "initramfs"
    (dest / "usr/lib/udev").mkdir(parents=True)
    (dest / "usr/lib/udev/hwdb.bin").write_bytes(b"KSLPHHRH" + bytes(64))
    hook = tmp_path / "archami"
    hook.write_text(INITRAMFS_HOOK_TEXT)
    assert subprocess.run(["sh", str(hook), "prereqs"], capture_output=True, text=True, check=True).stdout == ""
    subprocess.run(["sh", "-e", str(hook)], env={"DESTDIR": str(dest), "PATH": "/usr/bin:/bin"}, check=True)
    assert not (dest / "usr/lib/udev/hwdb.bin").exists()
    rules = (dest / "usr/lib/udev/rules.d/99-systemd.rules").read_text()
    assert 'SUBSYSTEM=="block", TAG+="systemd"' in rules  # what makes PID 1 see the root disk at once
    assert "RUN+=" not in rules
