"""Every `archami` command: its name, the module that defines it, its one-line help and its help panel.

`archami --help` is drawn from this table alone; a command's module (and what it imports: boto3, the build
stage, QEMU helpers) is imported only when that command runs or shows its own `--help`.

To add a command: define it in `archami/cli/NAME_cmds.py` on the shared app (`@app.command()`, or
`app.add_typer(sub_app, name="NAME")` for a command with subcommands), then add ONE line below, e.g.

    "mirrors": CommandEntry("mirrors_cmds", ARCH, "Rank Arch Linux mirrors and write per-region mirror lists."),

The help here is the one sentence `archami --help` shows (also once the module is loaded); the command's own
`--help` shows its docstring. tests/unit/test_cli_startup.py checks that this table and the modules agree.
"""

from __future__ import annotations

from typing import NamedTuple


class CommandEntry(NamedTuple):
    module: str  # under archami.cli, e.g. "config_cmds"
    panel: str  # the heading it is listed under in `archami --help`
    help: str  # shown by `archami --help`: one sentence (the command's own --help says more)


DEFINE = "Definitions"
BUILD = "Build and test"
SHIP = "Publish and release"
ARCH = "Arch Linux repository and mirrors"

COMMANDS: dict[str, CommandEntry] = {
    "validate": CommandEntry("config_cmds", DEFINE, "Check a definition; print ok or one error (file, key, reason)."),
    "plan": CommandEntry("config_cmds", DEFINE, "Show the variants a definition expands to."),
    "schema": CommandEntry("config_cmds", DEFINE, "Print every definition setting with its type, default and meaning."),
    "build": CommandEntry("build_cmds", BUILD, "Build the raw disk images of a definition's variants."),
    "audit": CommandEntry("audit_cmds", BUILD, "Check an image for keys, secrets, history and build leftovers."),
    "boot": CommandEntry("boot_cmds", BUILD, "Boot-test an image under QEMU against a local metadata service."),
    "imds": CommandEntry("imds_cmds", BUILD, "Serve EC2 instance metadata (IMDSv2) on a loopback port."),
    "doctor": CommandEntry("doctor_cmds", BUILD, "List the host tools archami needs and how to install them."),
    "publish": CommandEntry("publish_cmds", SHIP, "Upload a built image and register it as an AMI in every region."),
    "release": CommandEntry("release_cmds", SHIP, "Build, test and publish every variant; write the release record."),
    "site": CommandEntry("release_cmds", SHIP, "Render the release page (HTML, JSON, Markdown) from release records."),
    "latest": CommandEntry("release_cmds", SHIP, "Print the newest AMI id of a variant in a region."),
    "kernel": CommandEntry("kernel_cmds", BUILD, "Build linux-ec2 (the EC2 kernel) as Arch Linux and Debian packages."),
    "fleet": CommandEntry("fleet_cmds", BUILD, "Reboot N instances M times and count SSH sessions left hanging."),
    "prune": CommandEntry("publish_cmds", SHIP, "Keep, deprecate or remove old releases by policy, never the current."),
    "demo": CommandEntry("release_cmds", SHIP, "Release one variant to a local AWS emulator and render its site."),
    "stream": CommandEntry("verify_cmds", SHIP, "Write the signed release streams (newest AMI per region)."),
    "verify": CommandEntry("verify_cmds", SHIP, "Check a stream's signature and AMIs, or re-read a release in AWS."),
    "repo": CommandEntry("repo_cmds", ARCH, "Build, change and verify the signed ec2 package repository (Arch)."),
    "mirrors": CommandEntry("mirrors_cmds", ARCH, "Rank Arch Linux mirrors and write per-region mirror lists."),
}
