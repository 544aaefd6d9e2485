"""The slow boot that used to leave /boot/efi unmounted, reproduced on purpose: the guest's clock is slowed
(QEMU -icount: every instruction costs the guest 16 ns of its own time, on one vCPU), so udev in the booted
root creates the ESP's by-uuid link some 20 s after PID 1 starts, twice the 10 s device timeout the fstab
used to set, however busy or idle this machine is (guest time counts instructions, not host seconds). With
the ESP automounted the boot is healthy anyway and /boot/efi is the ESP.

One boot of about a minute under TCG (35 s to SSH on a quiet host).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from archami.artifacts import BuildResult
from archami.vm import ssh
from archami.vm.boot import random_instance, run_checks
from archami.vm.guest import running_guest
from archami.vm.qemu import disk_virtual_size, make_overlay

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_GUEST_SHIFT = 4  # 2**4 ns of guest time per instruction: the ESP came 22.1 s after PID 1 (at 3: 11.0-11.2 s)
OLD_DEVICE_TIMEOUT = 10.0  # seconds: x-systemd.device-timeout=10s, the policy this replaced
# When PID 1 started and when the ESP's device unit (what boot-efi.mount mounts) became active, in guest µs.
ESP_DELAY = (
    'unit=$(systemd-escape --path --suffix=device "$(systemctl show -p What --value boot-efi.mount)"); '
    "echo $(systemctl show -p UserspaceTimestampMonotonic --value) "
    '$(systemctl show -p ActiveEnterTimestampMonotonic --value "$unit")'
)


def test_esp_mounted_on_a_slow_boot(debian_build: BuildResult, tmp_path: Path) -> None:
    overlay = tmp_path / "disk.qcow2"
    make_overlay(debian_build.image, overlay)
    key = ssh.generate_keypair(tmp_path)
    instance = replace(random_instance(), public_keys={"test": key.public_line})
    with running_guest(overlay, "bios", instance, key, tmp_path, timeout=900, clean_shutdown=False,
                       icount_shift=SLOW_GUEST_SHIFT) as guest:
        results, _ = run_checks(guest, instance, disk_virtual_size(overlay))
        failed = [f"{c.name}: {c.detail}" for c in results if not c.ok]
        assert not failed, "\n".join(failed)
        # /boot/efi is the ESP itself (vfat from its partition), not the root filesystem's directory.
        assert guest.output("findmnt -n -o FSTYPE,SOURCE /boot/efi").split()[-2:] == ["vfat", "/dev/nvme0n1p2"]
        assert guest.output("stat -f -c %T /boot/efi/EFI").strip() == "msdos"
        userspace, device = (int(v) for v in guest.output(ESP_DELAY).split())
        assert device > 0, "the ESP's device unit never became active"
    delay = (device - userspace) / 1e6
    print(f"ESP device ready {delay:.1f} s (guest time) after PID 1; boot to SSH {guest.boot_seconds:.0f} s")
    # The reproduction holds only if the old policy would have failed on this very boot.
    assert delay > OLD_DEVICE_TIMEOUT, f"the guest was not slow enough to reproduce the case ({delay:.1f} s)"
