"""The built Debian example image passes its audit; the same image with secrets planted (written into the
ext4 with `debugfs -w`, still without mounting) fails it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from archami.artifacts import BuildResult
from archami.audit import audit_image
from archami.audit.ext4 import ext4_partitions

pytestmark = pytest.mark.integration


def test_example_image_is_clean(debian_build: BuildResult) -> None:
    report = audit_image(debian_build.image)
    assert report.ok, report.findings
    assert report.root_partition is not None


def test_planted_secrets_in_the_real_image_are_caught(debian_build: BuildResult, tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    subprocess.run(["cp", "--sparse=always", str(debian_build.image), str(image)], check=True)
    root = next(p for p in ext4_partitions(image) if p.number == audit_image(image).root_partition)
    keys = tmp_path / "authorized_keys"
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBToo2dJ1EQJB1wYHk6SCjOoTvb5Lx0FtcszFvPz3SyM leak\n")
    history = tmp_path / "history"
    history.write_text("curl http://169.254.169.254/latest/meta-data/\n")
    commands = "\n".join([
        "mkdir /root/.ssh",
        f"write {keys} /root/.ssh/authorized_keys",
        f"write {history} /root/.bash_history",
    ]) + "\n"
    subprocess.run(["debugfs", "-w", "-f", "-", f"{image}?offset={root.offset}"], input=commands, text=True,
                   check=True, capture_output=True)
    report = audit_image(image)
    found = {(f.rule, f.path) for f in report.findings}
    assert ("ssh-authorized-keys", "/root/.ssh/authorized_keys") in found
    assert ("shell-history", "/root/.bash_history") in found
