"""Rules across tables of a valid definition (the schema checks each table on its own).

Each returns (key, reason) pairs; the loader adds the line and reports them with the matrix's problems.
"""

from __future__ import annotations

from collections.abc import Iterator

from archami.config.schema import Definition, Flavour
from archami.config.types import AMI_NAME_MAX, CMDLINE_MAX, ami_name_error

# The longest release id archami makes (YYYY.MM.DD.N, N up to three digits): AMI names end with it.
LONGEST_RELEASE_ID = len("2026.12.31.999")


def _flavours(definition: Definition) -> Iterator[tuple[str, Flavour]]:
    yield "", Flavour()
    for name, flavour in definition.flavours.items():
        yield f"flavours.{name}.", flavour


def service_problems(definition: Definition) -> Iterator[tuple[str, str]]:
    """A flavour must not enable what the definition disables (or the reverse), and deferred units must be
    enabled in every variant that defers them."""
    base = definition.services
    for prefix, flavour in _flavours(definition):
        enabled = [*base.enable, *flavour.services.enable]
        disabled = [*base.disable, *flavour.services.disable]
        if prefix:
            both = [u for u in dict.fromkeys(enabled) if u in disabled]
            if both:
                yield f"{prefix}services", f"units both enabled and disabled (with the definition's): {', '.join(both)}"
        deferred = [*base.deferred, *flavour.services.deferred]
        missing = [u for u in dict.fromkeys(deferred) if u not in enabled]
        if missing:
            yield (f"{prefix}services.deferred",
                   f"deferred units must be enabled too (list them in services.enable): {', '.join(missing)}")


def cmdline_problems(definition: Definition) -> Iterator[tuple[str, str]]:
    for prefix, flavour in _flavours(definition):
        args = dict.fromkeys([*definition.kernel.cmdline, *flavour.kernel.cmdline])
        length = len(" ".join(args))
        if length > CMDLINE_MAX:
            yield (f"{prefix or ''}kernel.cmdline",
                   f"the kernel command line would be {length} characters; at most {CMDLINE_MAX} fit beside "
                   "archami's own arguments (x86 COMMAND_LINE_SIZE is 2048)")


def ami_name_problems(definition: Definition, variant_ids: list[str]) -> Iterator[tuple[str, str]]:
    """AMI names are NAME-VARIANT-RELEASEID: the longest must fit EC2's 128 characters."""
    if not variant_ids:
        return
    longest = max(variant_ids, key=len)
    length = len(definition.name) + 1 + len(longest) + 1 + LONGEST_RELEASE_ID
    if length > AMI_NAME_MAX:
        yield ("name", f"AMI names would be up to {length} characters ({definition.name}-{longest}-YYYY.MM.DD.N); "
                       f"EC2 allows {AMI_NAME_MAX}: shorten the name")
        return
    problem = ami_name_error(f"{definition.name}-{longest}-2026.12.31.999")
    if problem:
        yield ("name", problem)


def definition_problems(definition: Definition) -> list[tuple[str, str]]:
    return [*service_problems(definition), *cmdline_problems(definition)]
