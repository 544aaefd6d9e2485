"""What a kernel build is keyed on and stamped with (pure parts; no compile)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner

from archami.cli import app
from archami.kernel.build import KernelRequest, build_inputs, inputs_key, reproducible_env
from archami.kernel.configure import BaseConfig


def _request(tmp_path: Path, fragment_text: str, base: BaseConfig) -> KernelRequest:
    source = tmp_path / "linux.tar.xz"
    source.write_bytes(b"not really a tarball")
    fragment = tmp_path / f"fragment-{abs(hash(fragment_text))}.config"
    fragment.write_text(fragment_text)
    return KernelRequest(source=source, base=base, fragment=fragment, epoch=1700000000)


def test_the_cache_key_follows_every_input(tmp_path: Path) -> None:
    base = BaseConfig("config-cloud", "CONFIG_NET=y\n")
    plain = build_inputs(_request(tmp_path, "## a: b\nCONFIG_HZ_100=y\n", base), "gcc 12.2.0")
    assert inputs_key(plain) == inputs_key(build_inputs(_request(tmp_path, "## a: b\nCONFIG_HZ_100=y\n", base),
                                                        "gcc 12.2.0"))  # fmt: skip
    variants = [
        build_inputs(_request(tmp_path, "## a: b\nCONFIG_HZ_250=y\n", base), "gcc 12.2.0"),
        build_inputs(_request(tmp_path, "## a: b\nCONFIG_HZ_100=y\n", BaseConfig("defconfig", None)), "gcc 12.2.0"),
        build_inputs(_request(tmp_path, "## a: b\nCONFIG_HZ_100=y\n", base), "gcc 13.1.0"),
    ]
    keys = {inputs_key(v) for v in [plain, *variants]}
    assert len(keys) == 4


def test_the_build_timestamp_is_one_date_understands(tmp_path: Path) -> None:
    """usr/gen_initramfs.sh feeds KBUILD_BUILD_TIMESTAMP to `date -d`; it must mean SOURCE_DATE_EPOCH."""
    env = reproducible_env(1700000000, 2)
    parsed = subprocess.run(["date", "-u", "-d", env["KBUILD_BUILD_TIMESTAMP"], "+%s"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert parsed == env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert env["KBUILD_BUILD_VERSION"] == "2"


def test_cli_names_a_missing_tarball_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["kernel", "build", "--source", str(tmp_path / "none.tar.xz"),
                                      "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])  # fmt: skip
    assert result.exit_code != 0
    assert "no such source tarball" in str(result.exception)
