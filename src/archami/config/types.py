"""Precise types for every definition string that reaches a file, a command line or a name.

Each type is a `str` (pydantic strict mode: no coercion) with one validator that matches the *whole* string
(`re.fullmatch`: `re.match` with `$` would accept a trailing newline). A value that passes can be written
into a configuration file or put on a command line without quoting surprises; the writers check again.

Distro-specific rules (package names, releases, repositories) live in `distro/rules.py`; the schema passes
the definition's distro rules to the validators through pydantic's validation context.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

from archami.config.sizes import parse_size
from archami.config.zones import locale_error, timezone_error
from archami.distro.rules import ALL_RULES, DistroRules

# --- helpers -------------------------------------------------------------------------------------------


def control_characters(text: str) -> list[str]:
    """The control (and other non-printing format) characters in `text`, as escapes: ['\\n', '\\x00']."""
    return sorted({repr(c)[1:-1] for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")})


def _no_controls(text: str, what: str) -> None:
    bad = control_characters(text)
    if bad:
        raise ValueError(f"{what} contains control characters ({', '.join(bad)})")


def _pattern(regex: str, rule: str) -> Callable[[str], str]:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} {rule}")
        return value

    return check


def distro_rules(info: ValidationInfo) -> DistroRules | None:
    """The definition's distro rules, when the loader knows the distro (validation context)."""
    context = info.context
    rules = context.get("rules") if isinstance(context, dict) else None
    return rules if isinstance(rules, DistroRules) else None


# --- names ---------------------------------------------------------------------------------------------

# RFC 1123 labels (letters, digits, '-', not at either end, 1-63 characters) joined by dots; at most 64
# characters in all, Linux's HOST_NAME_MAX (what /etc/hostname and the kernel hold; EC2's own names are
# shorter). ASCII only: IDN names would have to be written in their xn-- form.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
HOSTNAME_MAX = 64


def _hostname(name: str) -> str:
    if not name:
        raise ValueError("a hostname cannot be empty")
    _no_controls(name, "the hostname")
    if len(name) > HOSTNAME_MAX:
        raise ValueError(f"a hostname has at most {HOSTNAME_MAX} characters (this one has {len(name)})")
    for label in name.split("."):
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"{name!r} is not a hostname: each dot-separated label is 1-63 ASCII letters, digits or '-', "
                "not starting or ending with '-' (RFC 1123)"
            )
    if re.fullmatch(r"[0-9.]+", name):
        raise ValueError(f"{name!r} looks like an IP address, not a hostname")
    return name


Hostname = Annotated[str, AfterValidator(_hostname)]


def _package(name: str, info: ValidationInfo) -> str:
    rules = distro_rules(info)
    candidates = (rules,) if rules is not None else ALL_RULES
    errors = [r.package_error(name) for r in candidates]
    if all(errors):
        if rules is None:
            raise ValueError(f"{name!r} is not a valid package name (letters, digits and + - . @ _)")
        raise ValueError(errors[0])
    return name


PackageName = Annotated[str, AfterValidator(_package)]

# Kernel module names: what modprobe and the initramfs tools take; MODULE_NAME_LEN is 56 bytes with the NUL.
# A distro whose initramfs tool marks optional modules (mkinitcpio's "name?") allows that mark too.
_MODULE = re.compile(r"[A-Za-z0-9_-]{1,55}")


def _module(name: str, info: ValidationInfo) -> str:
    rules = distro_rules(info)
    suffixes = [rules.optional_module_suffix] if rules is not None else [r.optional_module_suffix for r in ALL_RULES]
    bare = name
    for suffix in filter(None, suffixes):
        bare = bare.removesuffix(suffix)
    if not _MODULE.fullmatch(bare):
        marks = " or ".join(repr(f"name{s}") for s in filter(None, suffixes))
        optional = f"; {marks} marks an optional one" if marks else ""
        raise ValueError(f"{name!r} is not a kernel module name (letters, digits, '_' and '-'; at most 55{optional})")
    return name


ModuleName = Annotated[str, AfterValidator(_module)]

# systemd.unit(5): a prefix of letters, digits and ":-_.\\", an optional "@instance", then a unit type suffix;
# at most 255 characters. (A name without its suffix is refused: `systemctl` would guess ".service", but the
# build looks units up by their full name.)
UNIT_SUFFIXES = ("service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice",
                 "scope")
_UNIT = re.compile(r"[A-Za-z0-9:_.\\-]+(?:@[A-Za-z0-9:_.\\-]*)?\.(?:" + "|".join(UNIT_SUFFIXES) + ")")


def _unit(name: str) -> str:
    if len(name) > 255 or not _UNIT.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid systemd unit name (NAME[@INSTANCE].TYPE, e.g. 'getty@tty1.service'; "
            "letters, digits and ':-_.\\\\'; at most 255)"
        )
    return name


UnitName = Annotated[str, AfterValidator(_unit)]

_flavour = _pattern(r"[a-z][a-z0-9]{0,15}", "is not a flavour name (a lower-case word of at most 16 letters and "
                                            "digits)")
FlavourName = Annotated[str, AfterValidator(_flavour)]
# Where the matrix names a flavour: a defined flavour's name, or "default" (the unflavoured variant).
FlavourRef = Annotated[str, AfterValidator(lambda name: name if name == "default" else _flavour(name))]
# A release: the distro's own rule (distro/rules.py) first, then archami's, since it becomes part of variant
# ids, AMI names and file names.
_release_pattern = _pattern(r"[a-z][a-z0-9-]{0,31}", "is not a release name (lower-case letters, digits and '-'; "
                                                     "at most 32)")


def _release(release: str, info: ValidationInfo) -> str:
    rules = distro_rules(info)
    problem = rules.release_error(release) if rules is not None else None
    if problem:
        raise ValueError(problem)
    return _release_pattern(release)


ReleaseName = Annotated[str, AfterValidator(_release)]
# useradd's default NAME_REGEX (shadow) without its trailing '$' (machine accounts); at most 32 characters.
UserName = Annotated[
    str, AfterValidator(_pattern(r"[a-z_][a-z0-9_-]{0,31}", "is not a user name (lower-case letters, digits, '_' "
                                                            "and '-', starting with a letter or '_'; at most 32)"))
]
# EC2 instance types: family.size ("g4dn.xlarge", "u-6tb1.metal", "mac2-m2pro.metal").
InstanceType = Annotated[
    str, AfterValidator(_pattern(r"[a-z][a-z0-9-]{0,30}\.[a-z0-9-]{1,31}", "is not an EC2 instance type (e.g. "
                                                                          "'g4dn.xlarge')"))
]

# The image family: AMI names are NAME-VARIANT-RELEASEID, and EC2 allows 3-128 characters of letters, digits
# and ( ) [ ] . / - ' @ _ and space. archami's own part is stricter: it is also a file and tag value.
AMI_NAME_MIN, AMI_NAME_MAX = 3, 128
_AMI_NAME = re.compile(r"[A-Za-z0-9()\[\]./\-'@_ ]{3,128}")
ImageFamily = Annotated[
    str, AfterValidator(_pattern(r"[a-z0-9][a-z0-9-]{0,62}", "is not an image name: use lower-case letters, digits "
                                                             "and '-' (at most 63; AMI names are built from it)"))
]


def ami_name_error(name: str) -> str | None:
    """Why EC2 would refuse `name` as an AMI name, or None."""
    if not AMI_NAME_MIN <= len(name) <= AMI_NAME_MAX:
        return f"an AMI name has {AMI_NAME_MIN}-{AMI_NAME_MAX} characters; {name!r} has {len(name)}"
    if not _AMI_NAME.fullmatch(name):
        return f"{name!r} has characters EC2 does not allow in AMI names (letters, digits, ()[]./-'@_ and space)"
    return None


# EC2 image descriptions: at most 255 characters. One line of printable text: it is also the GRUB menu title.
DESCRIPTION_MAX = 255


def _description(text: str) -> str:
    if len(text) > DESCRIPTION_MAX:
        raise ValueError(f"EC2 allows at most {DESCRIPTION_MAX} characters in a description (this has {len(text)})")
    _no_controls(text, "the description")
    return text


Description = Annotated[str, AfterValidator(_description)]

# --- paths ---------------------------------------------------------------------------------------------

PATH_MAX = 4095  # bytes, without the NUL (Linux PATH_MAX is 4096 with it)
NAME_MAX = 255


def _image_path(path: str) -> str:
    if "\0" in path:
        raise ValueError("a path cannot contain a NUL byte")
    _no_controls(path, "the path")
    if not path.startswith("/"):
        raise ValueError(f"{path!r} must be an absolute path without '..'")
    if ".." in path.split("/"):
        raise ValueError(f"{path!r} must be an absolute path without '..'")
    if path == "/" or not path.strip("/"):
        raise ValueError("'/' is the image's root, not a file")
    normal = posixpath.normpath(path)
    if normal != path or path.startswith("//"):
        raise ValueError(f"{path!r} is not normalised: write {normal.replace('//', '/')!r}")
    if len(path.encode()) > PATH_MAX or any(len(part.encode()) > NAME_MAX for part in path.split("/")):
        raise ValueError(f"the path is too long (at most {PATH_MAX} bytes, {NAME_MAX} per name)")
    return path


ImagePath = Annotated[str, AfterValidator(_image_path)]


def _link_target(target: str) -> str:
    if not target:
        raise ValueError("a symlink target cannot be empty")
    if "\0" in target:
        raise ValueError("a symlink target cannot contain a NUL byte")
    _no_controls(target, "the symlink target")
    if len(target.encode()) > PATH_MAX:
        raise ValueError(f"the symlink target is too long (at most {PATH_MAX} bytes)")
    return target


LinkTarget = Annotated[str, AfterValidator(_link_target)]


def _local_path(path: str) -> str:
    if not path or "\0" in path:
        raise ValueError("a file path cannot be empty or contain a NUL byte")
    _no_controls(path, "the path")
    if len(path.encode()) > PATH_MAX:
        raise ValueError(f"the path is too long (at most {PATH_MAX} bytes)")
    return path


LocalPath = Annotated[str, AfterValidator(_local_path)]


def _mode(value: object) -> object:
    """An octal mode as a string ("0644") or a TOML integer (0o644), always kept as the string."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0o7777:
            raise ValueError(f"{value:#o} is not an octal mode such as '0644' (at most 0o7777)")
        return f"{value:04o}"
    return value


FileMode = Annotated[
    str, BeforeValidator(_mode), AfterValidator(_pattern(r"0?[0-7]{3,4}", "is not an octal mode such as '0644'"))
]

# --- URLs ----------------------------------------------------------------------------------------------

# Template variables the tools expand: pacman's $repo and $arch, and $region (filled in by the first-boot agent).
URL_VARIABLES = ("$repo", "$arch", "$region")
# RFC 3986 characters less '#' (pacman's comment) and the quote (no config writer holds it: percent-encode it)
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&()*+,;=%]+")


def url_error(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why `url` is not a usable repository or mirror URL, or None."""
    _no = control_characters(url)
    if _no:
        return f"contains control characters ({', '.join(_no)})"
    if not url:
        return "is empty"
    if len(url) > 2048:
        return "is longer than 2048 characters"
    if not _URL_CHARS.fullmatch(url):
        bad = sorted({c for c in url if not _URL_CHARS.fullmatch(c)})
        return f"{url!r} has characters a URL cannot hold unescaped ({' '.join(map(repr, bad))}; '#' included)"
    stripped = url
    for variable in URL_VARIABLES:
        stripped = stripped.replace(variable, "x")
    if "$" in stripped:
        return f"{url!r} uses an unknown variable (known: {', '.join(URL_VARIABLES)})"
    try:
        parts = urlsplit(stripped)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        return f"{url!r} is not a URL: {exc}"
    if parts.scheme not in schemes:
        return f"{url!r}: the scheme must be {', '.join(schemes)}"
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return f"{url!r}: a file URL is file:///absolute/path"
        return None
    if not parts.hostname:
        return f"{url!r} has no host"
    if parts.username is not None or parts.password is not None:
        return f"{url!r} holds credentials: they would be written into the image"
    host = parts.hostname
    if not (host.startswith("[") or ":" in host or _is_host(host)):
        return f"{url!r}: {host!r} is not a host name"
    return None


def _is_host(host: str) -> bool:
    return all(_LABEL.fullmatch(label) for label in host.split(".")) and len(host) <= 253


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(url: str) -> str:
        problem = url_error(url, schemes)
        if problem:
            raise ValueError(problem if problem.startswith(repr(url)) else f"the URL {problem}")
        return url

    return check


URL_SCHEMES = ("https", "http", "file")
MirrorUrl = Annotated[str, AfterValidator(_url(URL_SCHEMES))]


def _siglevel(value: str, info: ValidationInfo) -> str:
    _no_controls(value, "the SigLevel")
    rules = distro_rules(info)
    check = rules.siglevel_error if rules is not None else None
    problem = check(value) if check is not None else None
    if problem:
        raise ValueError(problem)
    if not re.fullmatch(r"[A-Za-z]+(?: [A-Za-z]+)*", value):
        raise ValueError(f"{value!r} is not a list of SigLevel words separated by single spaces")
    return value


SigLevel = Annotated[str, AfterValidator(_siglevel)]

# --- kernel command line -------------------------------------------------------------------------------

# One argument, NAME or NAME=VALUE, of characters that mean nothing to GRUB's shell-like parser, pv-grub's
# menu.lst or the kernel's own splitting (no spaces, quotes, '$', ';', '#', '\\', braces or globs).
_KERNEL_ARG = re.compile(r"[A-Za-z0-9_.,:/+@%~^-]+(?:=[A-Za-z0-9_.,:=/+@%~^-]*)?")
# x86 COMMAND_LINE_SIZE is 2048 bytes; archami adds root=UUID=..., ro and the console (about 70).
CMDLINE_MAX = 1900


def _kernel_arg(arg: str) -> str:
    if not _KERNEL_ARG.fullmatch(arg):
        raise ValueError(
            f"{arg!r} is not a kernel argument archami can write safely: NAME or NAME=VALUE of letters, digits "
            "and _ . , : / + @ % ~ ^ - (no spaces, quotes or shell characters)"
        )
    if arg.split("=", 1)[0] in ("root", "BOOT_IMAGE", "initrd"):
        raise ValueError(f"{arg!r}: archami sets root=, initrd and the boot image from the disk layout")
    return arg


KernelArg = Annotated[str, AfterValidator(_kernel_arg)]

# --- time zones and locales ----------------------------------------------------------------------------

Timezone = Annotated[str, AfterValidator(lambda zone: _raise_if(timezone_error(zone), zone))]
Locale = Annotated[str, AfterValidator(lambda name: _raise_if(locale_error(name), name))]


def _raise_if(problem: str | None, value: str) -> str:
    if problem:
        raise ValueError(problem)
    return value


# --- sizes ---------------------------------------------------------------------------------------------

Size = Annotated[int, BeforeValidator(parse_size)]

# --- network -------------------------------------------------------------------------------------------

# DHCP option names (as dhclient spells them, and the definition uses) -> option codes (RFC 2132, 4702)
# for systemd-networkd's RequestOptions=.
DHCP_OPTION_CODES = {
    "subnet-mask": 1,
    "time-offset": 2,
    "routers": 3,
    "domain-name-servers": 6,
    "host-name": 12,
    "domain-name": 15,
    "interface-mtu": 26,
    "broadcast-address": 28,
    "ntp-servers": 42,
    "domain-search": 119,
    "fqdn": 81,
}
DhcpOption = Literal[
    "subnet-mask", "time-offset", "routers", "domain-name-servers", "host-name", "domain-name", "interface-mtu",
    "broadcast-address", "ntp-servers", "domain-search", "fqdn",
]

# --- lists ---------------------------------------------------------------------------------------------


def unique(values: list[str]) -> list[str]:
    """A list validator: each value at most once (a duplicate is always a mistake in a definition)."""
    seen: set[str] = set()
    twice = [v for v in values if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
    if twice:
        raise ValueError(f"listed twice: {', '.join(dict.fromkeys(map(str, twice)))}")
    return values

