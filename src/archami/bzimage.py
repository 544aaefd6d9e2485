"""What a Linux x86 kernel image (bzImage, /boot/vmlinuz-*) says about itself, read from its bytes. PURE.

The boot protocol header (Documentation/arch/x86/boot.rst) sits at offset 0x1f1 of the file:

    0x1f1  setup_sects    u8   sectors of real-mode setup code after the boot sector (0 means 4)
    0x202  header         "HdrS"
    0x206  version        u16  boot protocol version (0x020f = 2.15)
    0x20e  kernel_version u16  offset - 0x200 of a NUL-terminated "6.12.118+deb13-cloud-amd64 (...) #1 SMP ..."
    0x236  xloadflags     u16  bit 0: XLF_KERNEL_64 (a 64-bit kernel), protocol 2.12 and later
    0x248  payload_offset u32  where the compressed kernel starts, counted from the protected-mode code
    0x24c  payload_length u32  (which begins right after the setup sectors), protocol 2.08 and later

Xen's loader, the one inside pv-grub, does not run the kernel's own decompressor: it takes the payload by
these two fields and must decompress it itself, so the payload's compression (told by its magic bytes)
decides whether pv-grub can load the kernel at all.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from archami.errors import ArchamiError

SECTOR = 512
HEADER_MAGIC = b"HdrS"
# Enough to hold the setup code, the header and the payload's first bytes (setup is at most 64 sectors).
READ_LIMIT = 128 * 1024

# Magic bytes at the start of each payload format the kernel can be built with (CONFIG_KERNEL_*).
PAYLOAD_MAGIC: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b"),
    ("bzip2", b"BZh"),
    ("lzma", b"\x5d\x00\x00"),
    ("xz", b"\xfd7zXZ\x00"),
    ("lzo", b"\x89LZO"),
    ("lz4", b"\x02\x21\x4c\x18"),  # the legacy lz4 frame the kernel's build uses
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("none", b"\x7fELF"),  # CONFIG_KERNEL_UNCOMPRESSED: the ELF vmlinux itself
)
_VERSION = re.compile(rb"^(\d+)\.(\d+)")


class KernelImageError(ArchamiError):
    pass


class KernelFacts(BaseModel):
    """Recorded in the manifest: what the image's kernel file is."""

    model_config = ConfigDict(frozen=True)
    path: str  # inside the image, as the boot loader names it
    release: str  # "6.12.118+deb13-cloud-amd64": the header's version string up to its first space
    version: tuple[int, int] | None  # (major, minor) of Linux, when the string starts with one
    protocol: str  # boot protocol "2.15"
    bits: int | None  # 64 or 32 (None before protocol 2.12, which does not say)
    compression: str  # a PAYLOAD_MAGIC name, or "unknown"


def payload_compression(payload: bytes) -> str:
    for name, magic in PAYLOAD_MAGIC:
        if payload.startswith(magic):
            return name
    return "unknown"


def parse_bzimage(data: bytes, path: str = "vmlinuz") -> KernelFacts:
    """Facts of a bzImage from (at least) its first READ_LIMIT bytes; KernelImageError when it is none."""
    if len(data) < 0x250 or data[0x202:0x206] != HEADER_MAGIC:
        raise KernelImageError(f"{path}: not a Linux x86 kernel image (no boot protocol header)")
    protocol = struct.unpack_from("<H", data, 0x206)[0]
    if protocol < 0x0208:
        raise KernelImageError(f"{path}: boot protocol {protocol >> 8}.{protocol & 0xFF} predates payload fields")
    setup_sects = data[0x1F1] or 4
    version_at = struct.unpack_from("<H", data, 0x20E)[0] + 0x200
    release = data[version_at : version_at + 256].split(b"\0", 1)[0].split(b" ", 1)[0] if version_at > 0x200 else b""
    match = _VERSION.match(release)
    xloadflags = struct.unpack_from("<H", data, 0x236)[0] if protocol >= 0x020C else None
    payload_offset = struct.unpack_from("<I", data, 0x248)[0]
    start = (setup_sects + 1) * SECTOR + payload_offset
    if start + 8 > len(data):
        raise KernelImageError(f"{path}: the payload starts at {start}, past the {len(data)} bytes read")
    return KernelFacts(
        path=path,
        release=release.decode("ascii", "replace"),
        version=(int(match.group(1)), int(match.group(2))) if match else None,
        protocol=f"{protocol >> 8}.{protocol & 0xFF}",
        bits=None if xloadflags is None else (64 if xloadflags & 1 else 32),
        compression=payload_compression(data[start : start + 8]),
    )


def payload_span(data: bytes) -> tuple[int, int]:
    """(offset in the file, length) of the compressed payload, for tools that want to decompress it."""
    setup_sects = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    return (setup_sects + 1) * SECTOR + offset, length


def read_kernel_facts(root: Path, path: str) -> KernelFacts:
    """Facts of the kernel at `path` inside the root directory `root` (symlinks such as /vmlinuz followed
    inside the root)."""
    host = root / path.lstrip("/")
    for _ in range(16):
        if not host.is_symlink():
            break
        target = Path(host.readlink())
        host = root / target.relative_to("/") if target.is_absolute() else host.parent / target
    try:
        with host.open("rb") as handle:
            data = handle.read(READ_LIMIT)
    except OSError as exc:
        raise KernelImageError(f"{path}: cannot read the kernel ({exc.strerror})") from None
    return parse_bzimage(data, path)
