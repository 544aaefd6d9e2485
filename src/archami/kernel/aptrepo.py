"""A signed flat apt repository for the kernel's `.deb`s: how a Debian image definition installs them.

    DIR/*.deb  DIR/Packages  DIR/Release  DIR/InRelease  DIR/Release.gpg  DIR/archive-key.asc

apt checks it like any archive (InRelease signed by the key in `archive-key.asc`; never `trusted=yes`):

    deb [signed-by=/path/archive-key.asc] http://HOST/PATH/ ./

Why a served repository rather than mmdebstrap's `--include=/path/x.deb`: definitions name packages, not
paths; the image keeps a source it can upgrade the kernel from; and a file:// source would need a hook
to make the files visible inside mmdebstrap's chroot (apt hands dpkg the path verbatim). Served on
127.0.0.1 in the tests, from any web server or S3 bucket for real.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from archami.kernel.debpkg import read_deb
from archami.pacman.gpg import Gpg

KEY_FILE = "archive-key.asc"
# Fields of a package's control file that go into Packages, in the order dpkg-scanpackages writes them.
_FIRST = ("Package", "Version", "Architecture", "Maintainer", "Installed-Size")


@dataclass(frozen=True)
class AptRepository:
    directory: Path
    key: str  # signing fingerprint
    packages: list[str]

    def source_line(self, url: str) -> str:
        """The sources.list line that trusts exactly this repository's key. apt checks signatures as its
        unprivileged `_apt` user: the key file and its directories must be readable by others."""
        return f"deb [signed-by={self.directory.resolve() / KEY_FILE}] {url.rstrip('/')}/ ./"


def _digests(path: Path) -> tuple[int, str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
            sha256.update(block)
    return path.stat().st_size, md5.hexdigest(), sha256.hexdigest()


def packages_index(directory: Path) -> str:
    stanzas = []
    for deb in sorted(directory.glob("*.deb")):
        info = read_deb(deb)
        fields = {k: info.control[k] for k in _FIRST if k in info.control}
        fields.update({k: v for k, v in info.control.items() if k not in fields and k != "Description"})
        size, md5, sha256 = _digests(deb)
        fields.update({"Filename": f"./{deb.name}", "Size": str(size), "MD5sum": md5, "SHA256": sha256})
        if "Description" in info.control:
            fields["Description"] = info.control["Description"]
        stanzas.append("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return "\n".join(stanzas)


def release_text(directory: Path, epoch: int, origin: str = "archami", label: str = "archami kernels") -> str:
    size, md5, sha256 = _digests(directory / "Packages")
    date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime(epoch))
    return (
        f"Origin: {origin}\nLabel: {label}\nSuite: ec2\nCodename: ec2\nDate: {date}\n"
        f"Architectures: amd64 all\nAcquire-By-Hash: no\n"
        f"MD5Sum:\n {md5} {size} Packages\nSHA256:\n {sha256} {size} Packages\n"
    )


def write_apt_repository(directory: Path, gpg: Gpg, key: str, *, epoch: int) -> AptRepository:
    """Index and sign the `.deb`s in `directory` (in place); returns how to point apt at it."""
    (directory / "Packages").write_text(packages_index(directory))
    release = directory / "Release"
    release.write_text(release_text(directory, epoch))
    for stale in ("InRelease", "Release.gpg"):
        (directory / stale).unlink(missing_ok=True)
    sign = ["--yes", "--local-user", key, "--digest-algo", "SHA512"]
    gpg.run([*sign, "--clearsign", "--output", str(directory / "InRelease"), str(release)])
    gpg.run([*sign, "--armor", "--detach-sign", "--output", str(directory / "Release.gpg"), str(release)])
    (directory / KEY_FILE).write_text(gpg.export_armored([key]))
    names = sorted(read_deb(p).package for p in directory.glob("*.deb"))
    return AptRepository(directory, key, names)
