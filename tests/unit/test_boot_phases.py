"""Splitting a boot into phases from what the guest's systemd printed (recorded from archami's trixie image
under QEMU: `systemctl show` of the manager and of ssh.service, the journal's first accepted key)."""

from __future__ import annotations

import subprocess

import pytest

from archami.vm import boot_phases

# systemctl show (manager, then ssh.service) and the journal line, as timestamps_script printed them.
RECORDED = """\
UserspaceTimestampMonotonic=6586685
InitRDTimestampMonotonic=0
ActiveEnterTimestampMonotonic=33109834
[   34.506522] ip-10-0-27-155 sshd-session[383]: Accepted publickey for root from 169.254.169.2 port 60936 ssh2: \
ED25519 SHA256:O3lzblVjrs5KRtqMKvnev6xtPL4bB9539ZO0zU4TV3o
"""


def test_the_four_phases_add_up_to_the_boot() -> None:
    # That boot: first login 45.33 s after QEMU started; the guest's clock read 0 at 5.18 s.
    phases = boot_phases.split_boot(45.33, 5.18, RECORDED, qemu_cpu=61.234)
    assert (phases.firmware_grub, phases.kernel_to_init, phases.init_to_sshd) == (5.18, 6.59, 26.52)
    assert phases.first_login == pytest.approx(45.33 - 5.18 - 33.11, abs=0.01)
    parts = [phases.firmware_grub, phases.kernel_to_init, phases.init_to_sshd, phases.first_login]
    assert sum(p for p in parts if p is not None) == pytest.approx(phases.total, abs=0.02)
    assert phases.login_accepted == pytest.approx(34.51 - 33.11, abs=0.01)  # sshd listening -> key accepted
    assert phases.qemu_cpu == 61.23


def test_a_boot_without_systemd_timestamps_is_refused() -> None:
    with pytest.raises(ValueError, match="systemd timestamps"):
        boot_phases.split_boot(40.0, 5.0, "UserspaceTimestampMonotonic=6586685\n")  # ssh.service never active
    no_key = boot_phases.split_boot(40.0, 5.0, RECORDED.splitlines()[0] + "\n" + RECORDED.splitlines()[2] + "\n")
    assert no_key.login_accepted is None


def test_systemd_analyze_lines() -> None:
    assert boot_phases.parse_analyze("Startup finished in 6.586s (kernel) + 26.558s (userspace) = 33.145s \n"
                                     "graphical.target reached after 26.551s in userspace.") == {
        "kernel": 6.586, "userspace": 26.558}
    uefi_boot = ("Startup finished in 1min 2.5s (firmware) + 950ms (loader) + 3.2s (kernel) + 870ms (initrd) "
                 "+ 12s (userspace) = 1min 19.52s")
    assert boot_phases.parse_analyze(uefi_boot) == pytest.approx(
        {"firmware": 62.5, "loader": 0.95, "kernel": 3.2, "initrd": 0.87, "userspace": 12.0})
    assert boot_phases.parse_analyze("Bootup is not yet finished.") == {}
    with pytest.raises(ValueError):
        boot_phases.analyze_seconds("soon")


def test_uptime_and_cpu_of_a_real_process() -> None:
    assert boot_phases.parse_uptime("41.51 70.20\n") == 41.51
    # A process whose name has spaces and a parenthesis: the fields count from the last ')'.
    stat = "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 6123 877 0 0 20 0 5 0 100 0 0"
    assert boot_phases.process_cpu_seconds(stat, 100) == pytest.approx(70.0)
    with open("/proc/self/stat") as handle:
        own = boot_phases.process_cpu_seconds(handle.read(), 100)
    assert 0 <= own < 3600


def test_the_guest_script_is_shell() -> None:
    script = boot_phases.timestamps_script("ssh.service")
    assert "systemctl show ssh.service -p ActiveEnterTimestampMonotonic" in script
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0


def test_medians_skip_missing_values() -> None:
    rows = [boot_phases.split_boot(t, 5.0, RECORDED) for t in (44.0, 46.0, 50.0)]
    rows.append(boot_phases.split_boot(45.0, 5.0, RECORDED.replace("Accepted publickey", "Connection closed")))
    medians = boot_phases.medians(rows)
    assert medians["total"] == 45.5 and medians["qemu_cpu"] is None
    assert medians["login_accepted"] == pytest.approx(1.4, abs=0.01)  # three boots have it


def test_a_guest_clock_that_does_not_keep_time_leaves_only_the_total() -> None:
    # Recorded: a UEFI boot at load 10 read "firmware + GRUB -43 s": the guest clock ran fast.
    assert boot_phases.clock_rate((100.0, 20.0), (160.0, 80.3)) == pytest.approx(1.005)
    fast = boot_phases.clock_rate((100.0, 20.0), (160.0, 140.0))
    assert abs(fast - 1) > boot_phases.CLOCK_RATE_TOLERANCE
    with pytest.raises(ValueError):
        boot_phases.clock_rate((100.0, 20.0), (100.0, 21.0))
    kept = boot_phases.without_guest_clock(boot_phases.split_boot(128.8, -43.2, RECORDED, qemu_cpu=55.0))
    assert (kept.total, kept.qemu_cpu) == (128.8, 55.0)
    assert [kept.firmware_grub, kept.kernel_to_init, kept.init_to_sshd, kept.first_login, kept.login_accepted] == [
        None] * 5
    assert boot_phases.medians([kept])["firmware_grub"] is None
