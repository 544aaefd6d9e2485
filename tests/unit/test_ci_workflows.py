"""The shipped CI workflows (ci/): valid against GitHub's and GitLab's schemas (check-jsonschema's vendored
copies, offline), and the matrix their own plan step computes is `archami plan --json`'s."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from archami.cli.plan_json import MATRIX_FIELDS

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "ci" / "github" / "archami.yml"
GITLAB = ROOT / "ci" / "gitlab" / ".gitlab-ci.yml"
DEFINITION = "examples/debian.toml"
CHECK = shutil.which("check-jsonschema", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
needs_checker = pytest.mark.skipif(CHECK is None, reason="check-jsonschema is not installed (pip install -e '.[test]')")


def validate(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    assert CHECK is not None
    return subprocess.run([CHECK, "--builtin-schema", schema, str(path)], capture_output=True, text=True, timeout=120)


def plan_json() -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", "from archami.cli import main; main()", "plan", DEFINITION,
                             "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture
def archami_on_path(tmp_path: Path) -> dict[str, str]:
    """An `archami` command (this checkout's, run by this interpreter) first on PATH, as a CI job has it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "archami"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'from archami.cli import main; main()' \"$@\"\n")
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ARCHAMI_DEFINITION": DEFINITION}


def run_script(script: str, env: dict[str, str], cwd: Path) -> None:
    # GitHub's `shell: bash` is `bash --noprofile --norc -eo pipefail {0}`; GitLab runs lines under `set -eo pipefail`.
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@needs_checker
@pytest.mark.parametrize(("path", "schema"), [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")])
def test_workflow_files_validate_against_their_schema(path: Path, schema: str, tmp_path: Path) -> None:
    assert validate(path, schema).returncode == 0, validate(path, schema).stdout
    # The check is real: the same file with a job lacking what it must have is refused.
    broken = yaml.safe_load(path.read_text())
    if schema == "vendor.github-workflows":
        del broken["jobs"]["build"]["runs-on"]
    else:
        broken["plan"]["artifacts"] = {"paths": "plan.json"}  # a string, not a list
    copy = tmp_path / path.name
    copy.write_text(yaml.safe_dump(broken))
    assert validate(copy, schema).returncode != 0


def _github_expression_value(expression: str, workflow: dict[str, Any], outputs: dict[str, str]) -> Any:
    """`${{ fromJSON(needs.JOB.outputs.NAME).PATH }}` as GitHub evaluates it, from the plan step's outputs."""
    match = re.fullmatch(r"\$\{\{\s*fromJSON\(needs\.(\w+)\.outputs\.(\w+)\)((?:\.\w+)*)\s*\}\}", expression)
    assert match, expression
    job, name, path = match.groups()
    source = workflow["jobs"][job]["outputs"][name]
    step_output = re.fullmatch(r"\$\{\{\s*steps\.(\w+)\.outputs\.(\w+)\s*\}\}", source)
    assert step_output, source
    value: Any = json.loads(outputs[step_output.group(2)])
    for part in filter(None, path.split(".")):
        value = value[part]
    return value


def test_the_github_matrix_step_computes_archami_plans_matrix(tmp_path: Path, archami_on_path: dict[str, str]) -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    plan_step = next(s for s in workflow["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    github_output = tmp_path / "github_output"
    run_script(plan_step["run"], {**archami_on_path, "GITHUB_OUTPUT": str(github_output)}, ROOT)
    outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
    matrix = _github_expression_value(workflow["jobs"]["build"]["strategy"]["matrix"], workflow, outputs)
    expected = plan_json()
    assert matrix == expected["matrix"]
    assert [e["id"] for e in matrix["include"]] == [v["id"] for v in expected["variants"] if v["publishable"]]
    assert all(set(entry) == set(MATRIX_FIELDS) for entry in matrix["include"])
    code = re.sub(r"(^|\s)#.*", "", GITHUB.read_text(), flags=re.MULTILINE)  # comments name matrix.include
    used = set(re.findall(r"\bmatrix\.(\w+)", code))
    assert used and used <= set(MATRIX_FIELDS), used - set(MATRIX_FIELDS)


@needs_checker
def test_the_gitlab_plan_job_writes_one_build_job_per_matrix_entry(tmp_path: Path,
                                                                   archami_on_path: dict[str, str]) -> None:
    pipeline = yaml.safe_load(GITLAB.read_text())
    for name in ("ci", "examples"):  # the job runs at the root of a checkout
        (tmp_path / name).symlink_to(ROOT / name)
    run_script("\n".join(pipeline["plan"]["script"]), archami_on_path, tmp_path)
    child_file = tmp_path / pipeline["variants"]["trigger"]["include"][0]["artifact"]
    assert validate(child_file, "vendor.gitlab-ci").returncode == 0
    child = yaml.safe_load(child_file.read_text())
    builds = {name: job for name, job in child.items() if isinstance(job, dict) and job.get("stage") == "build"}
    entries = plan_json()["matrix"]["include"]
    assert [job["variables"]["VARIANT"] for job in builds.values()] == [e["id"] for e in entries]
    assert [job["variables"]["FIRMWARES"].split() for job in builds.values()] == [e["firmwares"] for e in entries]
    assert {n["job"] for n in child["release"]["needs"]} == set(builds)


def test_the_matrix_leaves_out_what_ec2_cannot_boot_and_says_what_is_boot_tested() -> None:
    result = subprocess.run([sys.executable, "-c", "from archami.cli import main; main()", "plan",
                             "examples/arch-seed-columns.toml", "--json"], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    document = json.loads(result.stdout)
    variants = {v["id"]: v for v in document["variants"]}
    include = document["matrix"]["include"]
    assert [e["id"] for e in include] == [i for i, v in variants.items() if v["publishable"]]
    assert len(include) < len(variants)  # the paravirtual and i686 columns are refused, so not built
    for entry in include:
        assert entry["boot_testable"] == (variants[entry["id"]]["boot_test"] != "none")
        assert entry["firmwares"] == (["bios", "uefi"] if entry["boot_testable"] else [])
