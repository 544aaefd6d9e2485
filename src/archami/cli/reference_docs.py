"""The generated documents: the README's reference section and the man page, from the one settings table.

`make docs` runs `python -m archami.cli.reference_docs README.md docs/archami.1`, which rewrites the
README between its BEGIN/END markers and the whole man page; `--check` only says whether they are current
(tests/unit/test_reference.py asserts the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

from archami.cli.plan_json import MATRIX_FIELDS
from archami.cli.reference import settings
from archami.cli.reference_render import man_page, markdown, markdown_fields

# The variables archami reads (documented in the man page).
ENVIRONMENT: dict[str, str] = {
    "ARCHAMI_ARCH_MIRROR": "Arch Linux mirror the build installs from (https://HOST/PATH/$repo/os/$arch), when the "
                           "definition lists no mirrors.",
    "ARCHAMI_ALARM_MIRROR": "Arch Linux ARM mirror for aarch64 variants ($arch/$repo mirrors).",
    "ARCHAMI_DEBIAN_MIRROR": "Debian mirror the build installs from, when the definition lists no mirrors.",
    "ARCHAMI_SCRATCH": "Directory the image root is unpacked in (default: /dev/shm when it has room).",
    "ARCHAMI_DEBUG": "1: print the traceback of an unexpected error (as --debug does).",
    "ARCHAMI_LOG_DIR": "Where crash logs are written (default: $XDG_STATE_HOME/archami).",
}

# (begin marker, end marker, generated text) of each section of the README.
def readme_sections() -> list[tuple[str, str, str]]:
    return [
        ("<!-- BEGIN archami schema --markdown -->", "<!-- END archami schema --markdown -->",
         markdown(settings())),
        ("<!-- BEGIN archami plan --json fields -->", "<!-- END archami plan --json fields -->",
         markdown_fields(MATRIX_FIELDS)),
    ]


def man_text() -> str:
    return man_page(settings(), MATRIX_FIELDS, ENVIRONMENT)


def updated_readme(text: str) -> str:
    """`text` with every generated section replaced by its current content; ValueError if a marker is missing."""
    for begin, end, body in readme_sections():
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise ValueError(f"the README has no {begin} ... {end} section")
        text = text[: start + len(begin)] + "\n" + body + text[stop:]
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    readme, man = (Path(a) for a in argv if a != "--check")
    wanted = {readme: updated_readme(readme.read_text()), man: man_text()}
    stale = [path for path, text in wanted.items() if not path.is_file() or path.read_text() != text]
    if check:
        for path in stale:
            print(f"{path} is not current: run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
