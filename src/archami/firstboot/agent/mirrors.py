"""Package mirrors near the instance: pacman's mirrorlist from per-region lists, or apt's region mirror."""

from __future__ import annotations

import re

from . import values
from .context import Context
from .files import read_text, write_atomic

MIRROR_LISTS = "/usr/share/ec2-pacman-mirrors"  # shipped by the ec2-pacman-mirrors package
GLOBAL_LIST = "global.mirrorlist"


def valid_region(region: str) -> bool:
    """Safe in a file name and a URL; not held to today's region naming (eusc-de-east-1 came late)."""
    return values.region(region)


def pacman_mirrorlist(ctx: Context, region: str) -> str:
    """Install <region>.mirrorlist as /etc/pacman.d/mirrorlist, or the global list for unknown regions."""
    names = ([f"{region}.mirrorlist"] if valid_region(region) else []) + [GLOBAL_LIST]
    for name in names:
        text = read_text(ctx.path(f"{MIRROR_LISTS}/{name}"))
        if text is not None and re.search(r"^\s*Server\s*=", text, re.M):
            write_atomic(ctx.path("/etc/pacman.d/mirrorlist"), text.encode(), 0o644)
            return f"mirrorlist from {name}"
    return f"skipped: no usable list in {MIRROR_LISTS}"


def apt_region_mirror(ctx: Context, region: str, template: str) -> str:
    """Point the Debian archive entries of apt's sources at the region's mirror ($region in the template).

    Security archive entries are left alone: they must come from the security service itself.
    """
    if not valid_region(region):
        return f"skipped: {region!r} is not a region name"
    mirror = template.replace("$region", region)
    changed = []
    for path in (ctx.path("/etc/apt/sources.list"), ctx.path("/etc/apt/sources.list.d/debian.sources")):
        text = read_text(path)
        if text is None:
            continue
        new = _rewrite_deb822(text, mirror) if path.endswith(".sources") else _rewrite_one_line(text, mirror)
        if new != text:
            write_atomic(path, new.encode(), 0o644)
            changed.append(path[len(ctx.root) :] if ctx.root != "/" else path)
    return f"{mirror} in {', '.join(changed)}" if changed else "skipped: no apt sources to change"


def _rewrite_one_line(text: str, mirror: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if fields and fields[0] in ("deb", "deb-src"):
            uri_index = 2 if len(fields) > 2 and fields[1].startswith("[") else 1
            if uri_index < len(fields) and "security" not in fields[uri_index]:
                fields[uri_index] = mirror
                line = " ".join(fields) + "\n"
        out.append(line)
    return "".join(out)


def _rewrite_deb822(text: str, mirror: str) -> str:
    stanzas = text.split("\n\n")
    out = []
    for stanza in stanzas:
        if "security" not in stanza:
            stanza = re.sub(r"^URIs:.*$", f"URIs: {mirror}", stanza, flags=re.M)
        out.append(stanza)
    return "\n\n".join(out)
