"""`archami imds` serves metadata on its own: keys from files, user-data from a file, loopback only."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archami.cli import app
from archami.cli.imds_cmds import parse_faults
from archami.errors import ArchamiError
from archami.vm.imds import FaultPlan

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBS72FDJm5LdY/JnUUKSLLm4v4Ik2Q19XIn/Jl0T1PIz me@host"
runner = CliRunner()


def test_serves_keys_and_user_data(tmp_path: Path) -> None:
    (tmp_path / "mykey.pub").write_text(KEY + "\n")
    (tmp_path / "ud").write_bytes(b"#!/bin/sh\ntrue\n")
    argv = [sys.executable, "-c", "from archami.cli import main; main()", "imds", "--key", str(tmp_path / "mykey.pub"),
            "--instance-id", "i-0fedcba9876543210", "--region", "ap-southeast-2", "--user-data", str(tmp_path / "ud"),
            "--duration", "20"]
    env = {"COLUMNS": "200", "PATH": "/usr/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # this tree's code
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if match:
                url = int(match.group(1))
                break
        assert url is not None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", url, timeout=5)
            conn.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "30"})
            token = conn.getresponse().read().decode()
            answers = {}
            for path in ("meta-data/public-keys/", "meta-data/public-keys/0/openssh-key", "meta-data/instance-id",
                         "meta-data/placement/availability-zone", "user-data"):
                conn = http.client.HTTPConnection("127.0.0.1", url, timeout=5)
                conn.request("GET", f"/latest/{path}", headers={"X-aws-ec2-metadata-token": token})
                answers[path] = conn.getresponse().read().decode()
        finally:
            proc.terminate()
    assert answers == {
        "meta-data/public-keys/": "0=mykey",
        "meta-data/public-keys/0/openssh-key": KEY + "\n",
        "meta-data/instance-id": "i-0fedcba9876543210",
        "meta-data/placement/availability-zone": "ap-southeast-2a",
        "user-data": "#!/bin/sh\ntrue\n",
    }


def test_refuses_non_loopback_address() -> None:
    result = runner.invoke(app, ["imds", "--host", "0.0.0.0", "--duration", "0.1"])
    assert result.exit_code != 0
    assert "loopback only" in str(result.exception) + result.output


def test_key_file_with_two_lines_is_refused(tmp_path: Path) -> None:
    (tmp_path / "two.pub").write_text(f"{KEY}\n{KEY}\n")
    result = runner.invoke(app, ["imds", "--key", str(tmp_path / "two.pub"), "--duration", "0.1"])
    assert result.exit_code != 0
    assert "expected one OpenSSH public key line, found 2" in str(result.exception)


def test_runs_for_a_duration_and_stops() -> None:
    result = runner.invoke(app, ["imds", "--duration", "0.3"])
    assert result.exit_code == 0, result.output
    assert "local IMDSv2" in result.output


def test_fault_options() -> None:
    plan = parse_faults(["token-delay=1.5", "public-keys-404", "errors-500-first=3", "invalidate-tokens-after=4"])
    assert plan == FaultPlan(token_delay=1.5, public_keys_404=True, errors_500_first=3, invalidate_tokens_after=4)
    assert parse_faults(["truncate-always=no"]) == FaultPlan()


def test_bad_fault_options() -> None:
    with pytest.raises(ArchamiError, match="unknown fault"):
        parse_faults(["explode"])
    with pytest.raises(ArchamiError, match="needs a number"):
        parse_faults(["token-delay=soon"])
