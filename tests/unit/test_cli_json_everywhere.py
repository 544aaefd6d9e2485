"""`--json` on every command of the command table (cli/commands.py), each run through the real entry point in its
own process: stdout is one JSON document, for an error (the `{"error": {file, key, reason}}` object) as for
a success, and logs stay on stderr. No case needs root or the network: the errors are missing or wrong files
and bad values, refused before any work starts."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from archami.cli.app import app
from archami.cli.commands import COMMANDS

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "tests" / "unit" / "release_records" / "debian"
MISSING = "{missing}"  # replaced by a path that does not exist
A_FILE = "{file}"  # replaced by a regular file (where a directory is wanted)

# One error case per command. A new command fails test_every_command_takes_json_and_has_an_error_case
# until it has a line here.
ERROR_CASES: dict[str, list[str]] = {
    "validate": [MISSING],
    "plan": [MISSING],
    "schema": ["--no-such-option"],
    "build": [MISSING],
    "audit": [MISSING],
    "boot": [MISSING],
    "imds": ["--port", "70000"],
    "doctor": ["no-such-command"],
    "publish": [MISSING],
    "release": [MISSING],
    "site": ["--releases", A_FILE],
    "latest": ["--region", "us-east-1", "--variant", "x", "--stream", MISSING],
    "kernel build": ["--source", MISSING, "--out", "{tmp}/kernel"],
    "kernel apt-repo": [MISSING],
    "kernel fragment": [MISSING],
    "fleet": [MISSING],
    "prune": ["--keep", "0"],
    "demo": [MISSING],
    "stream": ["--releases", A_FILE],
    "verify": [MISSING, "--key", A_FILE],
    "repo build": ["--packages", MISSING],
    "repo add": [MISSING, "{tmp}/x-1-1-any.pkg.tar.zst"],
    "repo remove": [MISSING, "x"],
    "repo verify": [MISSING],
    "repo list": [MISSING],
    "mirrors rank": ["--status", MISSING],
    "mirrors regions": ["--status", MISSING, MISSING],
}


def leaf_commands() -> dict[str, typer.core.TyperCommand]:
    """Every runnable command, by its words ("repo add"), found by walking the lazily loaded table."""
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    found: dict[str, typer.core.TyperCommand] = {}

    def walk(command: object, words: list[str]) -> None:
        sub = getattr(command, "list_commands", None)
        if sub is None:
            found[" ".join(words)] = command  # type: ignore[assignment]
            return
        for name in sub(ctx):
            walk(command.get_command(ctx, name), [*words, name])  # type: ignore[attr-defined]

    for name in COMMANDS:
        walk(group.get_command(ctx, name), [name])  # type: ignore[attr-defined]
    return found


def archami(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "ARCHAMI_LOG_DIR": str(tmp / "logs"), "ARCHAMI_ACCEL": "tcg",
           "ARCHAMI_GNUPGHOME": str(tmp / "gnupg"), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run([sys.executable, "-c", "from archami.cli import main; main()", *args], capture_output=True,
                          text=True, env=env, cwd=tmp, timeout=120)


def takes_json(command: typer.core.TyperCommand) -> bool:
    return any("--json" in getattr(param, "opts", []) for param in command.params)


def test_every_command_takes_json_and_has_an_error_case() -> None:
    leaves = leaf_commands()
    assert set(leaves) == set(ERROR_CASES)
    without = {words for words, command in leaves.items() if not takes_json(command)}
    assert not without, f"no --json: {sorted(without)}"


@dataclass(frozen=True)
class ErrorRun:
    args: list[str]
    files: tuple[Path, Path]  # the missing path and the regular file the case may name
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ErrorRun]:
    """Every error case, run a few at a time (each process mostly waits on imports)."""
    def one(words: str) -> ErrorRun:
        tmp = tmp_path_factory.mktemp(words.replace(" ", "-"))
        missing, a_file = tmp / "no-such-thing", tmp / "a-file"
        a_file.write_text("x")
        args = [a.replace(MISSING, str(missing)).replace(A_FILE, str(a_file)).replace("{tmp}", str(tmp))
                for a in ERROR_CASES[words]]
        return ErrorRun(args, (missing, a_file), archami(tmp, *words.split(), *args, "--json"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(ERROR_CASES, pool.map(one, ERROR_CASES), strict=True))


@pytest.mark.parametrize("words", sorted(ERROR_CASES))
def test_an_error_is_one_json_object_on_stdout(words: str, error_runs: dict[str, ErrorRun]) -> None:
    run = error_runs[words]
    args, result = run.args, run.result
    assert result.returncode not in (0, 70), result.stdout + result.stderr  # refused, and not as a bug
    document = json.loads(result.stdout)
    assert set(document) <= {"error", "problems"}
    error = document["error"]
    assert set(error) == {"file", "key", "reason"} and error["reason"]
    named = next((p for p in run.files if str(p) in args), None)  # the first file the case names
    if named is not None:  # the file at fault is named: in `file`, or in the reason
        assert error["file"] == str(named) or str(named) in error["reason"]
    if error["key"] is not None and error["key"].startswith("--"):  # an option at fault: one the case gave
        assert error["key"] in args, error


def test_a_definition_with_several_problems_lists_them_all(tmp_path: Path) -> None:
    definition = tmp_path / "two.toml"
    text = (REPO / "examples" / "debian.toml").read_text()
    definition.write_text(text.replace('name = "', 'name = "Bad Name ', 1) + '\nno_such_key = 1\n')
    result = archami(tmp_path, "validate", str(definition), "--json")
    assert result.returncode == 2 and result.stderr == ""
    document = json.loads(result.stdout)
    assert len(document["problems"]) >= 2
    assert document["error"] == {k: document["problems"][0][k] for k in ("file", "key", "reason")}
    assert all(p["file"] == str(definition) and p["line"] for p in document["problems"])


def test_success_cases_print_one_document(tmp_path: Path) -> None:
    example = str(REPO / "examples" / "debian.toml")
    validate = json.loads(archami(tmp_path, "validate", example, "--json").stdout)
    plan = json.loads(archami(tmp_path, "plan", example, "--json").stdout)
    assert validate["definition"] == example and validate["variants"]
    assert plan["sha256"] == validate["sha256"]
    fragment = json.loads(archami(tmp_path, "kernel", "fragment", "--json").stdout)
    assert fragment and all(group["options"] for group in fragment)
    doctor = archami(tmp_path, "doctor", "validate", "--json")
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["command"] == "validate"
    site = archami(tmp_path, "site", "--releases", str(RECORDS), "--out", str(tmp_path / "site"), "--json")
    assert site.returncode == 0, site.stderr
    assert Path(json.loads(site.stdout)["index"]).is_file()


def test_schema_prints_json(tmp_path: Path) -> None:
    result = archami(tmp_path, "schema", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)


def test_imds_prints_its_chosen_port_first_and_logs_requests_on_stderr(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "from archami.cli import main; main()", "imds", "--port", "0", "--duration", "3",
            "--json"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = []
        for line in proc.stdout:  # the document is complete when its closing brace is alone on a line
            lines.append(line)
            if line.rstrip() == "}":
                break
        started = json.loads("".join(lines))
        conn = http.client.HTTPConnection("127.0.0.1", started["port"], timeout=5)
        conn.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "30"})
        assert conn.getresponse().status == 200
        rest_of_stdout, stderr = proc.communicate(timeout=60)  # it stops by itself (--duration)
    assert started["url"] == f"http://127.0.0.1:{started['port']}" and started["port"] > 0
    assert rest_of_stdout == ""  # nothing but the document on stdout
    assert "PUT /latest/api/token -> 200" in stderr
