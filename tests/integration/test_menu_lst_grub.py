"""The paravirtual menu.lst read by GRUB's own GRUB-legacy parser (grub-menulst2cfg runs the legacy_parse code
that PV GRUB's `legacy_configfile` uses). Nothing here runs Xen, so no pv-grub boots the image: this checks
what pv-grub would read, the device (the layout's, from the one pv-grub table), kernel, arguments, initrd."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from archami.image.grub import BootFiles, menu_lst
from archami.image.layout import kernel_cmdline, plan_layout
from archami.image.pvgrub import pv_grub_boot

pytestmark = pytest.mark.integration


def test_grub_legacy_parser_reads_the_menu_as_written(tmp_path: Path) -> None:
    layout = plan_layout(2 * 1024**3, virtualization="paravirtual", esp_size=64 * 1024**2, seed="s")
    cmdline = kernel_cmdline(layout, ["console=tty0", "net.ifnames=0"], "paravirtual")
    menu = tmp_path / "menu.lst"
    menu.write_text(menu_lst("Debian for EC2", BootFiles("/vmlinuz", "/initrd.img"), cmdline, layout.scheme))
    converted = tmp_path / "grub.cfg"
    subprocess.run(["grub-menulst2cfg", str(menu), str(converted)], check=True, capture_output=True, timeout=30)
    cfg = converted.read_text()
    (entry,) = re.findall(r"menuentry '([^']*)' \{\n(.*?)\n\}", cfg, re.S)
    title, body = entry
    assert title == "Debian for EC2"
    root = re.search(r"set root='([^']*)'", body)
    kernel = re.search(r"legacy_kernel\s+(.*)", body)
    assert root and kernel, body
    assert root.group(1) == pv_grub_boot(layout.scheme).grub_root
    args = re.findall(r"'([^']*)'", kernel.group(1))
    assert args[:2] == ["/vmlinuz", "/vmlinuz"] and args[2:] == cmdline.split()
    assert "console=hvc0" in args and f"root=UUID={layout.root.fs_uuid}" in args
    assert re.search(r"legacy_initrd\s+'/initrd.img'", body)
    assert "set default='0'" in cfg and "set timeout=1" in cfg
