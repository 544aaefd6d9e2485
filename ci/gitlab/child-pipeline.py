#!/usr/bin/env python3
"""The child pipeline of ci/gitlab/.gitlab-ci.yml: one build job per variant of `archami plan --json`.

    archami plan "$ARCHAMI_DEFINITION" --json | python3 ci/gitlab/child-pipeline.py > variants.yml

reads the plan's matrix.include (fields: README, `man archami`) and writes the pipeline as JSON (which is
YAML): a `build <variant id>` job per variant (build, audit, boot test under each of its firmwares, the
build kept as an artifact), then `release` (every build adopted by `archami release --builds`, with its
passed boot tests, and published) and `pages` (the release page). Standard library only: it runs before
anything is installed.

Runner tags: $ARCHAMI_RUNNER_TAG (default "archami": a shell or privileged runner where archami may run as
root) and, for aarch64 variants, $ARCHAMI_ARM64_RUNNER_TAG (default: the same runner, which builds them
under qemu-user).
"""

from __future__ import annotations

import json
import os
import sys

SETUP = ["make venv"]  # host packages (apt) and the virtualenv; the runner runs jobs as root
ARCHAMI = ".venv/bin/archami"


def build_job(entry: dict[str, object], tags: dict[str, str]) -> dict[str, object]:
    variant = str(entry["id"])
    firmwares = [str(f) for f in entry["firmwares"]] if isinstance(entry["firmwares"], list) else []
    script = [
        f'{ARCHAMI} build "$ARCHAMI_DEFINITION" --variant "$VARIANT" --out out/builds',
        f'{ARCHAMI} audit "out/builds/$VARIANT"',
    ]
    if entry["boot_testable"]:
        script.append(f'for firmware in $FIRMWARES; do {ARCHAMI} boot "out/builds/$VARIANT" --firmware "$firmware"; '
                      "done")
    return {
        "stage": "build",
        "tags": [tags["aarch64" if entry["runner_arch"] == "aarch64" else "x86_64"]],
        "timeout": "150 minutes",
        "variables": {"VARIANT": variant, "FIRMWARES": " ".join(firmwares)},
        "before_script": SETUP,
        "script": script,
        "artifacts": {"paths": [f"out/builds/{variant}/"], "expire_in": "3 days", "when": "always"},
    }


def child_pipeline(plan: dict[str, object], env: dict[str, str]) -> dict[str, object]:
    matrix = plan["matrix"]
    entries = matrix["include"] if isinstance(matrix, dict) else []
    default_tag = env.get("ARCHAMI_RUNNER_TAG") or "archami"
    tags = {"x86_64": default_tag, "aarch64": env.get("ARCHAMI_ARM64_RUNNER_TAG") or default_tag}
    jobs = {f"build {e['id']}": build_job(e, tags) for e in entries}
    pipeline: dict[str, object] = {
        "stages": ["build", "release", "pages"],
        "variables": {"ARCHAMI_DEFINITION": env.get("ARCHAMI_DEFINITION") or str(plan["definition"])},
        **jobs,
        "release": {
            "stage": "release",
            "tags": [default_tag],
            "needs": [{"job": name, "artifacts": True} for name in jobs],
            "before_script": SETUP,
            "script": [f'{ARCHAMI} release "$ARCHAMI_DEFINITION" --builds out/builds --releases releases '
                       "--work out/release"],
            "artifacts": {"paths": ["releases/"], "when": "always"},
        },
        "pages": {
            "stage": "pages",
            "tags": [default_tag],
            "needs": [{"job": "release", "artifacts": True}],
            "when": "always",  # a partial release is shown with what failed
            "before_script": SETUP,
            "script": [f"{ARCHAMI} site --releases releases --out public"],
            "artifacts": {"paths": ["public/"]},
        },
    }
    return pipeline


if __name__ == "__main__":
    document = json.load(open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin)
    json.dump(child_pipeline(document, dict(os.environ)), sys.stdout, indent=2)
    sys.stdout.write("\n")
