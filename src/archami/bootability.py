"""Which variants EC2 can boot, and why not: decided from the definition (plan), then from the built kernel
(publish). PURE: no I/O.

`archami plan` shows `spec_problem` for every variant, `archami build` refuses a variant that has one, a
release skips it (recording the reason), and `archami publish` refuses a build whose `manifest_problem`
is not None: the kernel actually in the image is checked there, whatever the plan expected.

What is known and how (December 2026):
- pv-grub, the boot loader of every paravirtual AMI (Amazon's AKIs: GRUB 0.97 with Xen's domain builder),
  does not run the kernel's own decompressor: it decompresses the bzImage payload itself. gzip always
  worked; xz since the 1.04 AKIs (kali-cloud-build stopped building custom kernels for them). zstd it
  cannot load ("unknown compression format" from xc_dom_bzimageloader, as NixOS and Flatcar users found
  when their kernels moved to zstd); for lz4, lzo, lzma and bzip2 nothing says it can, so they are refused
  too rather than published untested (nothing on this machine boots a paravirtual image: no Xen).
- Linux 5.9 removed 32-bit Xen PV guest support: no current kernel boots as an i386 paravirtual guest.
- EC2 still registers i386 AMIs, but only Xen instance types run them (t2, m3, c3 and older list i386 among
  their supported architectures; Nitro types do not), with BIOS boot only.
"""

from __future__ import annotations

from archami.artifacts import Manifest
from archami.bzimage import KernelFacts
from archami.config.spec import ImageSpec
from archami.config.variant import Variant

PV_GRUB_LOADS = ("gzip", "xz")
LAST_32BIT_PV_LINUX = (5, 8)  # 5.9 removed 32-bit Xen PV guests

# Kernel packages whose payload compression is known before building (the build checks the real file).
_ARCH_ZSTD = "zstd", "as every Arch Linux kernel since Linux 5.9"
KNOWN_COMPRESSION = {
    ("arch", "linux"): _ARCH_ZSTD,
    ("arch", "linux-lts"): _ARCH_ZSTD,
    ("arch", "linux-zen"): _ARCH_ZSTD,
    ("arch", "linux-hardened"): _ARCH_ZSTD,
}
# Debian's NVIDIA driver packages are in the non-free component; archami's Debian builds install from main
# only (mmdebstrap's default), so such a flavour cannot be built: refused with the reason instead of an
# "unable to locate package" from apt halfway through a build.
_DEBIAN_NON_FREE_PREFIXES = ("nvidia-", "firmware-nvidia", "libnvidia-", "libcuda", "cuda-")

I686_PV = "i686 paravirtual: Linux 5.9 removed 32-bit Xen PV guests, and every kernel the distros ship is newer"
I686_HVM = {
    "arch": "i686: Arch Linux has no i686 port; Arch Linux 32 is another distribution (its own keyring, "
    "mirrors and per-region mirror lists, none of which archami ships), so archami does not build it",
    "debian": "i686: Debian 13 (trixie) and later ship no i386 kernel; archami builds no i386 images of older "
    "releases (its GRUB set-up and boot test are x86_64)",
}


def compression_problem(compression: str, where: str, note: str = "") -> str | None:
    if compression in PV_GRUB_LOADS:
        return None
    what = f"paravirtual: {where} is {compression}-compressed{f' ({note})' if note else ''}"
    if compression == "zstd":
        return f"{what}, which pv-grub (EC2's AKIs) cannot load"
    return (
        f"{what}; pv-grub (EC2's AKIs) is known to load only {' or '.join(PV_GRUB_LOADS)} kernels "
        "(a kernel built with CONFIG_KERNEL_GZIP or CONFIG_KERNEL_XZ)"
    )


def variant_problem(variant: Variant) -> str | None:
    """What rules a variant out by its identity alone."""
    if variant.architecture == "i686":
        if variant.virtualization == "paravirtual":
            return I686_PV
        return I686_HVM.get(variant.distro, "i686: not built by archami")
    return None


def _non_free(spec: ImageSpec) -> list[str]:
    if spec.distro != "debian":
        return []
    return [p for p in spec.packages if p.startswith(_DEBIAN_NON_FREE_PREFIXES)]


def spec_problem(spec: ImageSpec) -> str | None:
    """Why this variant cannot be released, as far as the definition tells; None when it can (the build
    then checks the kernel it installed)."""
    problem = variant_problem(spec.variant)
    if problem:
        return problem
    non_free = _non_free(spec)
    if non_free:
        return (
            f"{', '.join(non_free)}: Debian's NVIDIA drivers are in the non-free component, and archami's Debian "
            "images use main only; build the gpu flavour for Arch Linux (nvidia-open)"
        )
    known = KNOWN_COMPRESSION.get((spec.distro, spec.kernel.package))
    if spec.variant.virtualization == "paravirtual" and known is not None:
        compression, note = known
        return compression_problem(compression, f"the {spec.kernel.package} kernel", note)
    return None


def kernel_problem(facts: KernelFacts, variant: Variant) -> str | None:
    """Why pv-grub cannot boot this kernel (None for hvm variants: GRUB 2 loads every payload)."""
    if variant.virtualization != "paravirtual":
        return None
    if facts.bits == 32 and facts.version is not None and facts.version > LAST_32BIT_PV_LINUX:
        return f"paravirtual: {facts.path} is Linux {facts.release}, 32-bit; Linux 5.9 removed 32-bit Xen PV guests"
    return compression_problem(facts.compression, f"{facts.path} (Linux {facts.release})")


def manifest_problem(manifest: Manifest) -> str | None:
    """Why this build must not be published; checked by `archami publish` on the kernel in the image."""
    problem = variant_problem(manifest.variant)
    if problem or manifest.variant.virtualization != "paravirtual":
        return problem
    if manifest.kernel is None:
        return "paravirtual: this build does not record its kernel's compression (an older archami): rebuild it"
    return kernel_problem(manifest.kernel, manifest.variant)
