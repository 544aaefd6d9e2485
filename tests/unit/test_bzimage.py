"""The bzImage header read the way Xen's loader (pv-grub) reads it: crafted images whose payloads are made by
the real compressors Python ships (gzip, bzip2, xz, lzma), and by magic bytes for the formats it does not."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from pathlib import Path

import pytest

from archami.bzimage import KernelImageError, parse_bzimage, payload_span, read_kernel_facts

ELF = b"\x7fELF\x02\x01\x01" + bytes(57) + b"vmlinux body " * 200  # what every payload decompresses to

COMPRESSORS = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "bzip2": bz2.compress,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32),
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "none": lambda data: data,
}
# Formats without a Python compressor: their frame magic followed by filler.
MAGIC_ONLY = {"zstd": b"\x28\xb5\x2f\xfd", "lz4": b"\x02\x21\x4c\x18", "lzo": b"\x89LZO\x00"}


def bzimage(
    payload: bytes, *, release: bytes = b"6.12.118+deb13-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP",
    setup_sects: int = 27, protocol: int = 0x020F, xloadflags: int = 0x7F, payload_offset: int = 0x3A5,
) -> bytes:
    """A kernel image laid out as the boot protocol says: boot sector + setup sectors, then the
    protected-mode code, whose payload starts at payload_offset."""
    setup = bytearray(((setup_sects or 4) + 1) * 512)  # 0 in the header means 4
    setup[0x1F1] = setup_sects
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, protocol)
    version_at = 0x600  # inside the setup code, as the kernel's own build places it
    struct.pack_into("<H", setup, 0x20E, version_at - 0x200)
    setup[version_at : version_at + len(release) + 1] = release + b"\0"
    struct.pack_into("<H", setup, 0x236, xloadflags)
    struct.pack_into("<II", setup, 0x248, payload_offset, len(payload))
    return bytes(setup) + bytes(payload_offset) + payload + bytes(64)


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_payload_compression_made_by_real_compressors(name: str) -> None:
    image = bzimage(COMPRESSORS[name](ELF))
    facts = parse_bzimage(image)
    assert facts.compression == name
    start, length = payload_span(image)
    payload = image[start : start + length]
    decompress = {"gzip": gzip.decompress, "bzip2": bz2.decompress, "xz": lzma.decompress,
                  "lzma": lzma.decompress, "none": lambda d: d}[name]
    assert decompress(payload) == ELF  # the span is exactly the payload


@pytest.mark.parametrize("name", sorted(MAGIC_ONLY))
def test_payload_formats_known_by_their_magic(name: str) -> None:
    assert parse_bzimage(bzimage(MAGIC_ONLY[name] + b"\x00" * 32)).compression == name
    assert parse_bzimage(bzimage(b"\x00\x01\x02\x03" * 8)).compression == "unknown"


def test_version_bits_and_protocol_from_the_header() -> None:
    facts = parse_bzimage(bzimage(b"\x1f\x8b" + bytes(30)))
    assert (facts.release, facts.version, facts.protocol, facts.bits) == (
        "6.12.118+deb13-cloud-amd64", (6, 12), "2.15", 64)
    old32 = parse_bzimage(bzimage(b"\x1f\x8b" + bytes(30), release=b"5.8.18-1-686 (x) #1", xloadflags=0))
    assert (old32.version, old32.bits) == ((5, 8), 32)
    before_xloadflags = parse_bzimage(bzimage(b"\x1f\x8b" + bytes(30), protocol=0x020A))
    assert before_xloadflags.bits is None and before_xloadflags.protocol == "2.10"
    # setup_sects 0 means 4 (very old kernels): the payload is looked for after 5 sectors.
    assert parse_bzimage(bzimage(b"\xfd7zXZ\x00" + bytes(30), setup_sects=0)).compression == "xz"


def test_what_is_not_a_kernel_image_is_refused() -> None:
    with pytest.raises(KernelImageError, match="no boot protocol header"):
        parse_bzimage(b"MZ" + bytes(4096))  # e.g. an arm64 Image (a PE header, no HdrS)
    with pytest.raises(KernelImageError, match="predates payload fields"):
        parse_bzimage(bzimage(b"\x1f\x8b", protocol=0x0206))
    truncated = bzimage(b"\x1f\x8b" + bytes(30), payload_offset=200_000)[:20_000]
    with pytest.raises(KernelImageError, match="past the"):
        parse_bzimage(truncated)


def test_reading_the_kernel_of_a_root_follows_its_symlinks_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.12.118+deb13-cloud-amd64").write_bytes(bzimage(COMPRESSORS["xz"](ELF)))
    (tmp_path / "vmlinuz").symlink_to("/boot/vmlinuz-6.12.118+deb13-cloud-amd64")  # absolute: the root's
    facts = read_kernel_facts(tmp_path, "/vmlinuz")
    assert (facts.path, facts.compression) == ("/vmlinuz", "xz")
    with pytest.raises(KernelImageError, match="cannot read the kernel"):
        read_kernel_facts(tmp_path, "/boot/vmlinuz-missing")
