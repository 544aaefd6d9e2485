"""ArchBackend against REAL pacman: a signed repository of our own, served on 127.0.0.1.

The repository is made with the real tools users use — makepkg (as `nobody`: it refuses root), gpg
detached signatures, repo-add --sign — and holds:
  core  (signed by the "distro" key, trusted like archlinux's):  group `base` = shell-dash + initscripts,
        archlinux-keyring (holding the "newpackager" key, as a keyring newer than the host's would),
        test-kernel, broken-scriptlet (scriptlet exits 3), orphan-scriptlet (scriptlet, no shell dependency)
  extra (signed by the distro key): unsigned-pkg (no signature), rogue-pkg (signed by a key nobody trusts),
        mkinitcpio-probe (a /usr/bin/mkinitcpio that records how it ran), hook-probe (a pacman hook),
        new-packager-pkg (signed by the "newpackager" key, known only from the refreshed keyring)
  ec2   (signed by the definition repository's own key, `first = true`): hello-scriptlet (install scriptlet)
shell-dash is the host's dash and the libraries it needs: the /bin/sh that install scriptlets run with
(hello-scriptlet depends on it, as Arch packages with scriptlets do on bash through `base`).
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import shutil
import subprocess
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from archami.config import expand, parse_definition
from archami.distro.arch import ArchBackend
from archami.distro.arch_keyring import key_fingerprints
from archami.distro.arch_pacman import PacmanPaths, install
from archami.distro.base import BuildContext
from archami.errors import ArchamiError

pytestmark = pytest.mark.integration

LOG = logging.getLogger("test-arch")
# The [options] and repositories of Arch's own /etc/pacman.conf (the instance's is made from it).
PACMAN_CONF = """[options]
HoldPkg     = pacman glibc
Architecture = auto
CheckSpace
DownloadUser = alpm
SigLevel    = Required DatabaseOptional
LocalFileSigLevel = Optional

[core]
Include = /etc/pacman.d/mirrorlist

[extra]
Include = /etc/pacman.d/mirrorlist
"""
KEY_NAMES = ("distro", "ec2", "rogue", "newpackager")


# Stands in for mkinitcpio inside the test root (the real one needs a real Arch userland): records how it
# was called and whether the API filesystems were mounted in the chroot it ran in.
MKINITCPIO_PROBE = """#!/bin/sh
{
  echo "args: $*"
  [ -e /proc/self/status ] && echo "proc: yes"
  [ -c /dev/null ] && echo "dev: yes"
  [ -d /sys/kernel ] && echo "sys: yes"
  echo "pwd: $(pwd)"
} > /var/lib/mkinitcpio-probe.log
"""


# A pacman hook shipped in the image (usr/share/libalpm/hooks): it must run, chrooted into the image.
HOOK_PROBE = """[Trigger]
Operation = Install
Type = Package
Target = new-packager-pkg

[Action]
Description = archami test hook
When = PostTransaction
Exec = /bin/sh -c 'echo hook > /var/lib/hook-probe.ran'
"""


@dataclass
class Package:
    name: str
    repo: str
    signer: str | None  # key name, or None for unsigned
    files: dict[str, Path | bytes]  # path in package -> host file to copy, or content
    depends: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    install: str | None = None  # .install scriptlet text


def _sh(*cmd: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _gen_key(gnupghome: Path, uid: str) -> Path:
    """A throwaway ed25519 signing key; returns its exported public key file."""
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    _sh("gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never", env=env)
    public = gnupghome.parent / f"{gnupghome.name}.pub.asc"
    public.write_text(_sh("gpg", "--batch", "--armor", "--export", uid, env=env))
    return public


def _dash_files() -> dict[str, Path | bytes]:
    """The host's dash as /usr/bin/sh plus the libraries ldd says it loads, at the same paths."""
    files: dict[str, Path | bytes] = {"bin/sh": Path("/bin/dash")}
    for line in _sh("ldd", "/bin/dash").splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if lib.startswith("/"):
            files[lib.lstrip("/")] = Path(lib)
    return files


def _pkgbuild(pkg: Package) -> str:
    arrays = "\n".join(
        f"{key}=({' '.join(repr(v) for v in values)})"
        for key, values in (("depends", pkg.depends), ("groups", pkg.groups))
        if values
    )
    install = f"install={pkg.name}.install" if pkg.install else ""
    return textwrap.dedent(
        f"""\
        pkgname={pkg.name}
        pkgver=1.0
        pkgrel=1
        pkgdesc='archami test package'
        arch=('x86_64')
        license=('MIT')
        options=('!strip' '!debug')
        {install}
        """
    ) + arrays + '\npackage() {\n  cp -a "$startdir/files/." "$pkgdir/"\n}\n'


def _makepkg(pkg: Package, work: Path) -> Path:
    src = work / "src" / pkg.name
    (src / "files").mkdir(parents=True)
    for rel, what in pkg.files.items():
        target = src / "files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, Path):
            shutil.copy2(what, target)
        else:
            target.write_bytes(what)
            target.chmod(0o755)
    (src / "PKGBUILD").write_text(_pkgbuild(pkg))
    if pkg.install:
        (src / f"{pkg.name}.install").write_text(pkg.install)
    shutil.chown(src, "nobody")
    for path in src.rglob("*"):
        os.chown(path, 65534, 65534, follow_symlinks=False)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(src),
        "PKGEXT": ".pkg.tar.zst", "SOURCE_DATE_EPOCH": "1700000000",
    }
    _sh("runuser", "-u", "nobody", "--", "makepkg", "--nodeps", "--noconfirm", "--force", env=env, cwd=src)
    (built,) = src.glob(f"{pkg.name}-1.0-1-x86_64.pkg.tar.zst")
    return built


@dataclass
class LocalRepo:
    url: str  # mirror template for core/extra
    ec2_server: str
    distro_key: Path
    ec2_key: Path
    rogue_key: Path


def _serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def test_repo() -> Iterator[LocalRepo]:
    # pytest's tmp dirs are 0700 root: makepkg runs as nobody, so use a world-traversable dir of our own.
    work = Path(tempfile.mkdtemp(prefix="archami-arch-test-"))
    work.chmod(0o755)
    try:
        keys = {}
        for name in KEY_NAMES:
            home = work / f"gnupg-{name}"
            home.mkdir(mode=0o700)
            keys[name] = (home, _gen_key(home, f"archami test {name} <{name}@archami.test>"))
        scriptlet = "post_install() {\n  echo ran > /var/lib/hello-scriptlet.ran\n}\n"
        (newpackager,) = key_fingerprints(keys["newpackager"][1])
        # The mirror's archlinux-keyring is newer than the host's: it knows a packager the host's doesn't.
        keyring_files: dict[str, Path | bytes] = {
            "usr/share/pacman/keyrings/archlinux.gpg": keys["newpackager"][1].read_bytes(),
            "usr/share/pacman/keyrings/archlinux-trusted": f"{newpackager}:4:\n".encode(),
            "usr/share/pacman/keyrings/archlinux-revoked": b"",
        }
        packages = [
            Package("shell-dash", "core", "distro", _dash_files(), groups=("base",)),
            Package("initscripts", "core", "distro", {"etc/initscripts.conf": b"legacy\n"}, groups=("base",)),
            Package(
                "test-kernel", "core", "distro",
                {
                    "usr/lib/modules/6.1.0-test/vmlinuz": b"not a kernel",
                    "usr/lib/modules/6.1.0-test/pkgbase": b"test-kernel\n",
                },
            ),
            Package("mkinitcpio-probe", "extra", "distro", {"usr/bin/mkinitcpio": MKINITCPIO_PROBE.encode()},
                    depends=("shell-dash",)),
            # As on Arch, the keyring depends on pacman: the refresh must fetch the keyring alone (-dd), not
            # its dependency closure, and pacman ships the pacman.conf the instance's is made from.
            Package("archlinux-keyring", "core", "distro", keyring_files, depends=("pacman",)),
            Package("pacman", "core", "distro", {"etc/pacman.conf": PACMAN_CONF.encode()}, depends=("shell-dash",),
                    groups=("base",)),
            # The backend always installs what its steps need (sshd; Python for the first-boot agent).
            Package("openssh", "core", "distro", {"etc/ssh/sshd_config": b"# test\n"}),
            Package("python", "core", "distro", {"usr/share/python-test": b"x\n"}),
            Package("new-packager-pkg", "extra", "newpackager", {"etc/new-packager": b"x\n"}),
            Package("hook-probe", "extra", "distro", {"usr/share/libalpm/hooks/90-probe.hook": HOOK_PROBE.encode()},
                    depends=("shell-dash",)),
            Package("orphan-scriptlet", "core", "distro", {"etc/orphan": b"x\n"}, install=scriptlet),
            # Runs until it is killed: for the interruption tests (dash has no sleep builtin; a busy loop).
            Package(
                "slow-scriptlet", "extra", "distro", {"etc/slow": b"x\n"}, depends=("shell-dash",),
                install="post_install() {\n  : > /var/lib/slow.started\n  while :; do :; done\n}\n",
            ),
            Package(
                "broken-scriptlet", "core", "distro", {"etc/broken": b"x\n"}, install="post_install() {\n  exit 3\n}\n"
            ),
            Package("unsigned-pkg", "extra", None, {"etc/unsigned": b"x\n"}),
            Package("rogue-pkg", "extra", "rogue", {"etc/rogue": b"x\n"}),
            Package(
                "hello-scriptlet", "ec2", "ec2", {"usr/share/hello/README": b"hi\n"},
                install=scriptlet, depends=("shell-dash",),
            ),
        ]
        served = work / "srv"
        for pkg in packages:
            built = _makepkg(pkg, work)
            repo_dir = served / pkg.repo / "os" / "x86_64"
            repo_dir.mkdir(parents=True, exist_ok=True)
            target = repo_dir / built.name
            shutil.copy2(built, target)
            if pkg.signer:
                env = {**os.environ, "GNUPGHOME": str(keys[pkg.signer][0])}
                _sh("gpg", "--batch", "--detach-sign", "--no-armor", "-o", f"{target}.sig", str(target), env=env)
            db_signer = "ec2" if pkg.repo == "ec2" else "distro"
            env = {**os.environ, "GNUPGHOME": str(keys[db_signer][0])}
            _sh("repo-add", "-q", "--sign", str(repo_dir / f"{pkg.repo}.db.tar.gz"), str(target), env=env)
        server, base = _serve(served)
        try:
            yield LocalRepo(
                url=f"{base}/$repo/os/$arch",
                ec2_server=f"{base}/ec2/os/$arch",
                distro_key=keys["distro"][1],
                ec2_key=keys["ec2"][1],
                rogue_key=keys["rogue"][1],
            )
        finally:
            server.shutdown()
    finally:
        for name in KEY_NAMES:
            subprocess.run(["gpgconf", "--homedir", str(work / f"gnupg-{name}"), "--kill", "all"], check=False)
        shutil.rmtree(work, ignore_errors=True)


def _definition_toml(repo: LocalRepo, add: list[str]) -> str:
    return textwrap.dedent(
        f"""\
        name = "archtest"
        distro = "arch"
        release = "rolling"
        mirrors = ["{repo.url}"]
        [kernel]
        stable = "test-kernel"
        initramfs_modules = ["nvme", "ena"]
        [packages]
        add = {add!r}
        remove = ["initscripts", "sysvinit"]
        [[repositories]]
        name = "ec2"
        server = "{repo.ec2_server}"
        siglevel = "Required"
        key = "{repo.ec2_key}"
        first = true
        """
    )


@dataclass
class Built:
    ctx: BuildContext
    backend: ArchBackend
    paths: PacmanPaths


@pytest.fixture(scope="module")
def bootstrapped(test_repo: LocalRepo, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One bootstrap shared by the tests below: the keyring's --populate archlinux costs ~25 s."""
    base = tmp_path_factory.mktemp("arch-build")
    definition = parse_definition(_definition_toml(test_repo, ["hello-scriptlet", "mkinitcpio-probe", "hook-probe"]))
    (spec,) = expand(definition)
    ctx = BuildContext(spec=spec, root=base / "root", work=base / "work", cache=base / "cache", log=LOG)
    backend = ArchBackend(extra_trusted_keys=(test_repo.distro_key,))
    backend.bootstrap(ctx)
    return Built(ctx=ctx, backend=backend, paths=backend.paths(ctx))


def test_bootstrap_installs_signed_packages_and_runs_scriptlets(bootstrapped: Built) -> None:
    root = bootstrapped.ctx.root
    names = {p.name: p.version for p in bootstrapped.backend.installed_packages(root)}
    # Later tests in this module install more into the same root, so check these, not the exact set.
    assert {"shell-dash": "1.0-1", "test-kernel": "1.0-1", "hello-scriptlet": "1.0-1"}.items() <= names.items()
    # The ec2 repository's scriptlet ran with the image's own /bin/sh.
    assert (root / "var/lib/hello-scriptlet.ran").read_text() == "ran\n"
    assert bootstrapped.backend.kernel_version(root, bootstrapped.ctx.spec) == "6.1.0-test"
    # Packages came through archami's cache, and the host's pacman state was not used.
    assert list(bootstrapped.paths.cache_dir.glob("hello-scriptlet-1.0-1-x86_64.pkg.tar.zst"))
    assert (bootstrapped.ctx.work / "gnupg" / "pubring.gpg").exists()


def test_keyring_refreshed_from_the_mirrors_archlinux_keyring_trusts_new_packagers(bootstrapped: Built) -> None:
    # Unknown to the host's keyring and never added directly: trusted only through the refreshed keyring.
    install(bootstrapped.paths, ["new-packager-pkg"], LOG, refresh=False)
    assert (bootstrapped.ctx.root / "etc/new-packager").is_file()
    # hook-probe's hook (installed in the image by the bootstrap) ran in the image for this install.
    assert (bootstrapped.ctx.root / "var/lib/hook-probe.ran").read_text() == "hook\n"
    # Downloaded for the keyring, not installed.
    assert not list((bootstrapped.ctx.root / "var/lib/pacman/local").glob("archlinux-keyring-*"))


def test_removed_packages_are_uninstalled(bootstrapped: Built) -> None:
    root = bootstrapped.ctx.root
    assert not list((root / "var/lib/pacman/local").glob("initscripts-*"))
    assert not (root / "etc/initscripts.conf").exists()


def test_the_ec2_repository_comes_first_in_the_build_config(bootstrapped: Built) -> None:
    text = bootstrapped.paths.config.read_text()
    assert text.index("[ec2]") < text.index("[core]") < text.index("[extra]")
    assert f"GPGDir = {bootstrapped.ctx.work / 'gnupg'}/" in text


@pytest.mark.parametrize(
    ("package", "reason"),
    [("unsigned-pkg", r"missing required signature|\.sig' from"), ("rogue-pkg", "required key missing from keyring")],
)
def test_unsigned_and_untrusted_packages_are_refused(bootstrapped: Built, package: str, reason: str) -> None:
    with pytest.raises(ArchamiError, match=reason):
        install(bootstrapped.paths, [package], LOG)
    assert not list((bootstrapped.ctx.root / "var/lib/pacman/local").glob(f"{package}-*"))


def test_failing_scriptlet_fails_although_pacman_exits_zero(bootstrapped: Built) -> None:
    with pytest.raises(ArchamiError, match="command failed to execute correctly"):
        install(bootstrapped.paths, ["broken-scriptlet"], LOG, refresh=False)


def test_scriptlet_without_a_shell_in_the_root_fails(bootstrapped: Built, tmp_path: Path) -> None:
    # A fresh root, same keyring and config: orphan-scriptlet pulls in no /bin/sh to run its scriptlet with.
    paths = PacmanPaths(
        root=tmp_path / "empty-root",
        config=bootstrapped.paths.config,
        gpg_dir=bootstrapped.paths.gpg_dir,
        cache_dir=bootstrapped.paths.cache_dir,
        log_file=tmp_path / "pacman.log",
    )
    with pytest.raises(ArchamiError, match="pacman reported failures although it exited 0"):
        install(paths, ["orphan-scriptlet"], LOG)


def test_package_signed_by_imported_but_untrusted_key_is_refused(
    bootstrapped: Built, test_repo: LocalRepo, tmp_path: Path
) -> None:
    # The signer's key is in the keyring but not locally signed: known, yet not trusted.
    gpg_dir = tmp_path / "gnupg"
    shutil.copytree(bootstrapped.paths.gpg_dir, gpg_dir, ignore=shutil.ignore_patterns("S.*"))
    subprocess.run(["pacman-key", "--gpgdir", str(gpg_dir), "--add", str(test_repo.rogue_key)], check=True)
    paths = PacmanPaths(
        root=bootstrapped.ctx.root,
        config=bootstrapped.paths.config,
        gpg_dir=gpg_dir,
        cache_dir=tmp_path / "cache",
        log_file=tmp_path / "pacman.log",
    )
    try:
        with pytest.raises(ArchamiError, match="unknown trust"):
            install(paths, ["rogue-pkg"], LOG)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(gpg_dir), "--kill", "all"], check=False)
    assert not list((bootstrapped.ctx.root / "var/lib/pacman/local").glob("rogue-pkg-*"))


def _mounts_under(path: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(path))]


def test_initramfs_runs_in_the_root_with_api_mounts_that_vanish(bootstrapped: Built) -> None:
    root = bootstrapped.ctx.root
    bootstrapped.backend.regenerate_initramfs(bootstrapped.ctx)
    conf = (root / "etc/mkinitcpio.conf.d/50-archami.conf").read_text()
    assert "MODULES=(nvme ena)" in conf and "autodetect" not in conf.split("HOOKS=")[1]
    probe = (root / "var/lib/mkinitcpio-probe.log").read_text().splitlines()
    assert probe == ["args: -P", "proc: yes", "dev: yes", "sys: yes", "pwd: /"]
    assert _mounts_under(root) == []  # the private mount namespace took its mounts with it


def test_instance_package_manager_config_then_clean(bootstrapped: Built, test_repo: LocalRepo) -> None:
    ctx, root = bootstrapped.ctx, bootstrapped.ctx.root
    bootstrapped.backend.configure_package_manager(ctx)
    conf = (root / "etc/pacman.conf").read_text()
    assert conf.index("[ec2]") < conf.index("[core]") < conf.index("[extra]")
    assert "Include = /etc/pacman.d/mirrorlist" in conf and "GPGDir" not in conf and "DBPath" not in conf
    assert conf.endswith(PACMAN_CONF[PACMAN_CONF.index("[core]"):])  # the package's file, repositories added
    assert "LocalFileSigLevel = Optional" in conf
    assert (root / "etc/pacman.d/mirrorlist").read_text().splitlines()[-1] == f"Server = {test_repo.url}"

    (root / "etc/pacman.d/gnupg").mkdir(parents=True, exist_ok=True)  # as archlinux-keyring's scriptlet may
    (root / "var/cache/pacman/pkg/left-over.pkg.tar.zst").write_bytes(b"x")
    assert list((root / "var/lib/pacman/sync").glob("*.db"))
    bootstrapped.backend.clean(ctx)
    assert not (root / "etc/pacman.d/gnupg").exists()
    assert not (ctx.work / "gnupg").exists()
    assert list((root / "var/cache/pacman/pkg").iterdir()) == []
    assert list((root / "var/lib/pacman/sync").iterdir()) == []
    # The local database stays: the instance's pacman must know what is installed.
    assert {p.name for p in bootstrapped.backend.installed_packages(root)} >= {"shell-dash", "hello-scriptlet"}


# A build's bootstrap in its own process, as `archami build` runs it (SIGTERM becomes BuildInterrupted).
_DRIVER = """
import logging, sys
from pathlib import Path
from archami.config import expand, parse_definition
from archami.distro.arch import ArchBackend
from archami.distro.base import BuildContext
from archami.runner import sigterm_interrupts
base, key, cache = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
logging.basicConfig(level=logging.INFO, filename=str(base / "build.log"))
(spec,) = expand(parse_definition(sys.stdin.read()))
ctx = BuildContext(spec=spec, root=base / "root", work=base / "work", cache=cache,
                   log=logging.getLogger("driver"))
with sigterm_interrupts():
    ArchBackend(extra_trusted_keys=(key,)).bootstrap(ctx)
"""


def _processes_in(root: Path) -> list[str]:
    """Processes whose root directory or command line is the image root (chrooted scriptlets included)."""
    found = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            chrooted = os.readlink(proc_dir / "root") == str(root)
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if chrooted or str(root) in cmdline:
            found.append(f"{proc_dir.name}: {cmdline}")
    return found


@pytest.fixture(scope="module")
def shared_cache() -> Iterator[Path]:
    """One package and keyring cache for the interruption tests (populating a keyring costs ~25 s)."""
    path = Path(tempfile.mkdtemp(prefix="ai-cache-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_interrupted_pacman_leaves_no_process_or_mount(
    test_repo: LocalRepo, shared_cache: Path, request: pytest.FixtureRequest, sig: str
) -> None:
    """Killing a build while a package scriptlet runs chrooted in the root (API filesystems mounted for it)
    takes the scriptlet, pacman and the namespace's mounts with it — SIGKILL included (PDEATHSIG)."""
    import signal
    import sys
    import time

    # Short: gpg-agent's socket lives in the keyring directory and socket paths are limited to 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="ai-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(base), str(test_repo.distro_key), str(shared_cache)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(_definition_toml(test_repo, ["slow-scriptlet"]))
    proc.stdin.close()
    started = base / "root/var/lib/slow.started"
    deadline = time.monotonic() + 300
    try:
        while not started.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the slow scriptlet never started"
            time.sleep(0.2)
        assert _processes_in(base / "root"), "the scriptlet should be running in the root now"
        proc.send_signal(getattr(signal, sig))
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    if sig == "SIGTERM":
        assert "BuildInterrupted" in (proc.stderr.read() if proc.stderr else "")
    deadline = time.monotonic() + 30
    while _processes_in(base / "root") or _mounts_under(base):
        assert time.monotonic() < deadline, (_processes_in(base / "root"), _mounts_under(base))
        time.sleep(0.5)
