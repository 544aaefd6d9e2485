"""Bad command lines, run through the real entry point (`archami.cli.main`, in this process so the suite stays
fast; a few also in a subprocess): each exits non-zero before doing any work, with a clear message holding the
given words, and never a traceback."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from archami.artifacts import AUDIT_REPORT_NAME, IMAGE_NAME, MANIFEST_NAME, AuditReport, Manifest, write_json_atomic
from archami.cli import main
from archami.cli.errors import report, take_debug_flag, write_crash_log
from archami.config import load_definition

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "debian.toml"
BAD = REPO / "tests" / "unit" / "bad_definitions"
MIB = 1024**2


def fifo(tmp: Path) -> Path:
    path = tmp / "pipe.toml"
    os.mkfifo(path)
    return path


def big_file(tmp: Path) -> Path:
    path = tmp / "big.toml"
    with path.open("wb") as handle:
        handle.truncate(2 * MIB)
    return path


def a_file(tmp: Path, name: str = "file") -> Path:
    path = tmp / name
    path.write_text("x")
    return path


def build_dir(tmp: Path, *, manifest: str | None = None, image: bytes = b"\0" * 4096, audit_ok: bool = True,
              audit_sha: str | None = None) -> Path:
    """A build directory: a real manifest made from the example (or the text given), image, audit."""
    out = tmp / "build"
    out.mkdir()
    (out / IMAGE_NAME).write_bytes(image)
    digest = hashlib.sha256(image).hexdigest()
    if manifest is None:
        variant = load_definition(EXAMPLE).variants[0]
        model = Manifest(
            archami_version="0", definition_name=variant.name, definition_path=str(EXAMPLE), definition_sha256="0" * 64,
            variant=variant, variant_id=variant.id, built_at="2026-12-01T00:00:00Z", build_seconds=1.0,
            kernel_version="6.1.0", boot_mode=variant.boot_mode, image_size=len(image), used_bytes=len(image),
            image_sha256=digest, packages=[], packages_sha256="0" * 64,
        )
        write_json_atomic(out / MANIFEST_NAME, model)
    else:
        (out / MANIFEST_NAME).write_text(manifest)
    findings = [] if audit_ok else [{"rule": "ssh-host-key", "path": "/etc/ssh/ssh_host_rsa_key"}]
    audit = AuditReport.model_validate({"target": str(out / IMAGE_NAME), "ok": audit_ok, "findings": findings,
                                        "image_sha256": audit_sha or digest})
    write_json_atomic(out / AUDIT_REPORT_NAME, audit)
    return out


def measurement(tmp: Path) -> Path:
    path = tmp / "eu-west-1.json"
    path.write_text(json.dumps({"region": "eu-west-1", "path": "x", "deadline": "soon", "measurements": []}))
    return path


Case = tuple[Callable[[Path], list[str]], list[str]]
CASES: dict[str, Case] = {
    "validate a FIFO": (lambda t: ["validate", str(fifo(t))], ["FIFO"]),
    "validate /dev/zero": (lambda t: ["validate", "/dev/zero"], ["character device"]),
    "validate a directory": (lambda t: ["validate", str(t)], ["a directory"]),
    "validate a 2 MiB file": (lambda t: ["validate", str(big_file(t))],
                              ["2,097,152 bytes, more than the 1,048,576 allowed"]),
    "validate a missing file": (lambda t: ["validate", str(t / "none.toml")], ["cannot read", "none.toml"]),
    "validate a file with many problems": (lambda t: ["validate", str(BAD / "misspelled_key.toml")],
                                           ["did you mean 'hostname'"]),
    "plan a definition with a misspelled table": (lambda t: ["plan", str(BAD / "misspelled_table.toml")],
                                                  ["did you mean 'disk'"]),
    "build --out an existing file": (lambda t: ["build", str(EXAMPLE), "--out", str(a_file(t))],
                                     ["--out", "exists and is not a directory"]),
    "build --cache under a file": (lambda t: ["build", str(EXAMPLE), "--cache", str(a_file(t) / "cache")],
                                   ["--cache", "is not a directory"]),
    "site --out an existing file": (lambda t: ["site", "--releases", str(t), "--out", str(a_file(t))],
                                    ["--out", "exists and is not a directory"]),
    "site --history -1": (lambda t: ["site", "--releases", str(t), "--history", "-1"], ["--history"]),
    "imds --port 99999": (lambda t: ["imds", "--port", "99999"], ["--port", "not a TCP port"]),
    "imds --port -1": (lambda t: ["imds", "--port", "-1"], ["--port", "not a TCP port"]),
    "imds --duration -5": (lambda t: ["imds", "--duration", "-5"], ["--duration", "seconds"]),
    "imds --key a FIFO": (lambda t: ["imds", "--key", str(fifo(t))], ["--key", "FIFO"]),
    "imds --user-data /dev/zero": (lambda t: ["imds", "--user-data", "/dev/zero"], ["--user-data", "a device"]),
    "imds --host elsewhere": (lambda t: ["imds", "--host", "10.0.0.1", "--duration", "1"], ["loopback only"]),
    "publish --workers 0": (lambda t: ["publish", str(t), "--workers", "0"], ["--workers", "at least 1"]),
    "publish --release-id ../../../x": (lambda t: ["publish", str(t), "--release-id", "../../../x"],
                                        ["--release-id", "not an id"]),
    "publish --deprecate -1": (lambda t: ["publish", str(build_dir(t)), "--deprecate", "-1"],
                               ["--deprecate", "number of days"]),
    "publish a missing build directory": (lambda t: ["publish", str(t / "nope")], ["no such directory"]),
    "publish a corrupt manifest": (lambda t: ["publish", str(build_dir(t, manifest='{"archami_version": '))],
                                   ["is not a valid manifest", "not JSON"]),
    "publish an incomplete manifest": (lambda t: ["publish", str(build_dir(t, manifest='{"variant_id": "x"}'))],
                                       ["is not a valid manifest", "field"]),
    "publish an image that changed": (lambda t: ["publish", str(build_dir(t, audit_sha="f" * 64))],
                                      ["the audit is of image"]),
    "publish an image that failed its audit": (lambda t: ["publish", str(build_dir(t, audit_ok=False))],
                                               ["failed its audit", "ssh-host-key"]),
    "prune --keep 0": (lambda t: ["prune", "--keep", "0", "--dry-run"], ["--keep", "at least 1"]),
    "prune an unknown region": (lambda t: ["prune", "--regions", "nope-1", "--dry-run", "--endpoint-url",
                                           "http://127.0.0.1:9"], ["not an AWS region", "nope-1"]),
    "prune --older-than soon": (lambda t: ["prune", "--older-than", "soon", "--dry-run"], ["not a date"]),
    "mirrors regions with a malformed measurement file": (
        lambda t: ["mirrors", "regions", "--status", str(a_file(t, "status.json")), str(measurement(t))],
        ["is not a valid measurement report", "field deadline"]),
    "mirrors regions with a FIFO": (
        lambda t: ["mirrors", "regions", "--status", str(a_file(t, "status.json")), str(fifo(t))], ["FIFO"]),
    "mirrors rank --concurrency 0": (lambda t: ["mirrors", "rank", "--status", "x", "--concurrency", "0"],
                                     ["--concurrency", "at least 1"]),
    "mirrors rank --timeout nan": (lambda t: ["mirrors", "rank", "--status", "x", "--timeout", "nan"],
                                   ["--timeout", "positive number of seconds"]),
    "mirrors rank --out a directory": (lambda t: ["mirrors", "rank", "--status", "x", "--out", str(t)],
                                       ["--out", "is a directory"]),
    "mirrors rank --completion 150": (lambda t: ["mirrors", "rank", "--status", "x", "--completion", "150"],
                                      ["--completion", "percentage"]),
    "boot --timeout 0": (lambda t: ["boot", str(t), "--timeout", "0"], ["--timeout", "positive"]),
    "boot --firmware xen": (lambda t: ["boot", str(a_file(t)), "--firmware", "xen"], ["--firmware", "xen"]),
    "boot --disk-size 2.5.5G": (lambda t: ["boot", str(a_file(t)), "--disk-size", "2.5.5G"], ["--disk-size"]),
    "audit a missing image": (lambda t: ["audit", str(t / "nope.raw")], ["no image"]),
    "audit a file that is not an image": (lambda t: ["audit", str(a_file(t, "x.raw"))], ["no ext4 filesystem"]),
    "release --release-id with a slash": (lambda t: ["release", str(EXAMPLE), "--release-id", "a/b"], ["not an id"]),
    "release --boot-timeout -1": (lambda t: ["release", str(EXAMPLE), "--boot-timeout", "-1"], ["--boot-timeout"]),
    "latest --releases a missing directory": (
        lambda t: ["latest", "--region", "eu-west-1", "--variant", "x", "--releases", str(t / "none")],
        ["--releases", "no such directory"]),
}
EXIT_CODES = {"audit a missing image": 4, "audit a file that is not an image": 4}


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["archami", *args])
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out + captured.err


def _plain(text: str) -> str:
    """The message without Click's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_invocation_is_refused_clearly(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    make_args, words = CASES[name]
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("ARCHAMI_LOG_DIR", str(tmp_path / "logs"))
    args = make_args(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, output = _run(args, monkeypatch, capsys)
    text = _plain(output)
    assert code != 0, output
    assert code == EXIT_CODES.get(name, code)
    assert "Traceback" not in output and "unexpected" not in text, output
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no work started, nothing written
    assert not (tmp_path / "logs").exists()  # no crash log: every case is an expected error


def test_a_definition_with_many_problems_prints_one_line_each_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "many.toml"
    bad.write_text('name = "t"\ndistro = "debian"\nrelease = "bookworm"\nhostnme = "x"\n[kernel]\n'
                   'stable = "linux-image-cloud-amd64"\ncmdline = ["a;b"]\n[firstboot]\ngrow_root = "no"\n')
    code, output = _run(["validate", str(bad)], monkeypatch, capsys)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2
    assert [line.split(": ")[1:3] for line in lines] == [
        [f"{bad}:4", "hostnme"], [f"{bad}:7", "kernel.cmdline[0]"], [f"{bad}:9", "firstboot.grow_root"]]
    assert all(line.startswith("error: ") for line in lines)


def test_an_unexpected_error_is_one_line_and_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    monkeypatch.setenv("ARCHAMI_LOG_DIR", str(tmp_path))
    try:
        {}["missing"]  # a real bug's exception, with a real traceback
    except KeyError as exc:
        bug = exc
    console = Console(stderr=False, file=open(tmp_path / "out.txt", "w"), width=400)  # noqa: SIM115
    code = report(bug, ["archami", "validate", "x"], debug=False, console=console)
    console.file.close()
    line = (tmp_path / "out.txt").read_text().strip()
    assert code == 70 and "\n" not in line
    assert line.startswith("error: unexpected KeyError") and "--debug" in line
    log = Path(line.split("traceback in ")[1].split(";")[0])
    assert log.parent == tmp_path and "Traceback" in log.read_text() and "archami validate x" in log.read_text()
    assert write_crash_log(bug, ["archami"]) is not None


def test_debug_flag_is_taken_out_of_the_arguments() -> None:
    argv = ["archami", "--debug", "validate", "x.toml", "--", "--debug"]
    assert take_debug_flag(argv) is True
    assert argv == ["archami", "validate", "x.toml", "--", "--debug"]
    assert take_debug_flag(["archami", "validate"]) is False


@pytest.mark.parametrize("args,words", [
    (["imds", "--port", "70000"], ["not a TCP port"]),
    (["validate", "/dev/zero"], ["character device"]),
])
def test_in_a_real_process(args: list[str], words: list[str]) -> None:
    """The installed entry point, in its own process: the same refusals, no traceback."""
    archami = shutil.which("archami", path=str(Path(sys.executable).parent)) or "archami"
    result = subprocess.run([archami, *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "300"}, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert all(word in _plain(result.stderr) for word in words), result.stderr
