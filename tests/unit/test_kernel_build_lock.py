"""Two archami processes asking for the same kernel: the second waits for the first and takes its result
(a cold CI run once failed here: two test workers wanted linux-ec2 at once and the second was refused)."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from pathlib import Path

from archami.kernel.build import (
    RECORD_NAME,
    KernelBuild,
    KernelRequest,
    _build_lock,
    build_inputs,
    build_kernel,
    compiler_version,
    inputs_key,
)
from archami.kernel.configure import BaseConfig

PACKAGE = "linux-ec2-6.1.1-1-x86_64.pkg.tar.zst"


def _finish_first_build(entry: Path, request: KernelRequest, key: str) -> None:
    """What the first builder leaves in the cache when its compile ends."""
    entry.mkdir(parents=True)
    (entry / PACKAGE).write_bytes(b"package")
    (entry / "config-6.1.1").write_text("CONFIG_HZ_100=y\n")
    record = KernelBuild(
        release="6.1.1", version="6.1.1", pkgbase="linux-ec2", pkgrel=1, inputs={}, key=key,
        config_file="config-6.1.1", files={PACKAGE: 7}, compile_seconds=600.0, total_seconds=610.0,
    )  # fmt: skip
    (entry / RECORD_NAME).write_text(json.dumps(asdict(record)))


def test_a_second_build_of_the_same_kernel_waits_and_takes_the_first_ones_result(tmp_path: Path) -> None:
    source = tmp_path / "linux-source-6.1.tar.xz"
    source.write_bytes(b"not a tarball: a build that did not wait would fail to unpack it")
    fragment = tmp_path / "ec2.config"
    fragment.write_text("CONFIG_HZ_100=y\n")
    request = KernelRequest(source=source, base=BaseConfig(name="defconfig", text=None), fragment=fragment, epoch=1)
    log = logging.getLogger("kernel-lock-test")
    cache = tmp_path / "cache"
    key = inputs_key(build_inputs(request, compiler_version(log)))
    results: list[KernelBuild] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            results.append(build_kernel(request, tmp_path / "out", log, cache))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with _build_lock(cache, key, log):  # the first builder, compiling
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(1.5)
        assert waiter.is_alive(), f"the second build did not wait: {errors}"
        _finish_first_build(cache / key[:24], request, key)
    waiter.join(30)
    assert not errors and len(results) == 1
    assert results[0].cached
    assert (tmp_path / "out" / PACKAGE).read_bytes() == b"package"
