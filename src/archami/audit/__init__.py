"""Image audit: what must not ship in an AMI, found without booting or mounting the image.

`audit_image(image)` reads the root ext4 filesystem of a disk image through debugfs (read-only, no mounts,
no loop devices); `audit_root(root)` applies the same rules to a root directory.
"""

from __future__ import annotations

from pathlib import Path

from archami.artifacts import AuditFinding, AuditReport
from archami.audit.ext4 import AuditError, Ext4View, ext4_partitions
from archami.audit.fsview import FsView, RootView
from archami.audit.rules import RULE_IDS, RULES


def audit_view(view: FsView, target: str, root_partition: int | None = None) -> AuditReport:
    findings: list[AuditFinding] = []
    for rule in RULES:
        findings.extend(rule(view))
    return AuditReport(
        target=target, ok=not findings, findings=findings, checked_rules=list(RULE_IDS),
        root_partition=root_partition,
    )


def audit_root(root: Path) -> AuditReport:
    if not root.is_dir():
        raise AuditError(f"{root}: not a directory")
    return audit_view(RootView(root), str(root))


def audit_image(image: Path) -> AuditReport:
    """Audit the root filesystem of a disk image (GPT/MBR with an ext4 root, or a bare ext4 image).

    With several ext4 partitions the root is the one holding /etc/os-release.
    """
    if not image.is_file():
        raise AuditError(f"{image}: no such image")
    candidates = ext4_partitions(image)
    if not candidates:
        raise AuditError(f"{image}: no ext4 filesystem found (the audit reads ext4 root filesystems)")
    views = [(p, Ext4View(image, p.offset)) for p in candidates]
    partition, view = next(((p, v) for p, v in views if v.entry("/etc/os-release") is not None), views[0])
    return audit_view(view, str(image), root_partition=partition.number or None)


__all__ = ["AuditError", "audit_image", "audit_root", "audit_view"]
