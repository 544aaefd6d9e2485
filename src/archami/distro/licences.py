"""Licences of the installed packages, where the package data records them (for the image's SBOM).

Arch: %LICENSE% in pacman's local database (SPDX identifiers since 2023, older packages free text).
Debian: the machine-readable copyright file (DEP-5, `Format: .../copyright-format/1.0/`) that every package
keeps in /usr/share/doc/<package>/copyright (the build's dpkg excludes keep these); its `License:` short
names, the `Files: *` paragraph's first. Older free-form copyright files name no licence we could trust.
"""

from __future__ import annotations

from pathlib import Path

DEP5_FORMAT = "copyright-format/1.0"


def dep5_licences(text: str) -> list[str]:
    """License short names of a DEP-5 copyright file, the `Files: *` paragraph's first, each once. Pure."""
    if DEP5_FORMAT not in text.split("\n", 1)[0]:
        return []
    first: list[str] = []
    others: list[str] = []
    for paragraph in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        name = fields.get("license", "")
        if name and "files" in fields:
            (first if fields["files"].split() == ["*"] else others).append(name)
    return list(dict.fromkeys(first + others))


def debian_licences(root: Path, names: list[str]) -> dict[str, list[str]]:
    found = {}
    for name in names:
        copyright_file = root / "usr/share/doc" / name / "copyright"
        try:
            text = copyright_file.read_text(errors="replace")
        except OSError:
            continue
        licences = dep5_licences(text)
        if licences:
            found[name] = licences
    return found


def pacman_licences(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for desc in (root / "var/lib/pacman/local").glob("*/desc"):
        sections: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in desc.read_text(errors="replace").splitlines():
            if line.startswith("%") and line.endswith("%"):
                current = sections.setdefault(line.strip("%"), [])
            elif not line:
                current = None
            elif current is not None:
                current.append(line)
        if sections.get("NAME") and sections.get("LICENSE"):
            found[sections["NAME"][0]] = sections["LICENSE"]
    return found


def package_licences(distro: str, root: Path, names: list[str]) -> dict[str, list[str]]:
    """package name -> licences, for the packages whose data names them."""
    if distro == "arch":
        return pacman_licences(root)
    if distro == "debian":
        return debian_licences(root, names)
    return {}
