"""EC2 detection from sysfs (Nitro's DMI vendor, Xen's system UUID), as the agent sees it at boot."""

from __future__ import annotations

from pathlib import Path

import pytest

from archami.firstboot.agent.ec2detect import on_ec2


def sysfs(tmp_path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    "files",
    [
        {"class/dmi/id/sys_vendor": "Amazon EC2"},  # Nitro
        {"class/dmi/id/sys_vendor": "Xen", "class/dmi/id/product_uuid": "EC2E1916-9099-7CAF-FD21-012345678901"},
        {"class/dmi/id/sys_vendor": "Xen", "class/dmi/id/product_uuid": "16192EEC-9099-7CAF-FD21-012345678901"},
        {"hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345678901"},  # paravirtual: no DMI at all
    ],
)
def test_ec2(tmp_path: Path, files: dict[str, str]) -> None:
    assert on_ec2(sysfs(tmp_path, files))


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"class/dmi/id/sys_vendor": "QEMU", "class/dmi/id/product_uuid": "5f3c1a0e-9b7d-4c2a-8e6f-1b3d5a7c9e01"},
        {"class/dmi/id/sys_vendor": "Xen", "class/dmi/id/product_uuid": "12345678-1234-1234-1234-123456789012"},
    ],
)
def test_not_ec2(tmp_path: Path, files: dict[str, str]) -> None:
    assert not on_ec2(sysfs(tmp_path, files))
