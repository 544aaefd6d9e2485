"""An Arch-shaped pacman repository built from Debian 13 packages, for archami's tests.

Real pacman installs a real, bootable Arch-layout root from it with no Arch mirror: Debian's binaries
under Arch's package names, file layout and (for the packages archami relies on) Arch's metadata, with
an Arch-style `filesystem` package, alpm hooks and a mkinitcpio stand-in that builds with dracut.

    debs.py      fetch the Debian closure once (mmdebstrap, cached by its inputs)
    layout.py    Arch's merged-/usr layout for a Debian package's files
    catalog.py   Debian -> Arch names, Arch metadata, Debian-only packages left out
    extras.py    files Arch's packages ship and Debian's maintainer scripts would make
    convert.py   stage and pack one Arch package
    repo.py      sign, index (core, extra), mirror layout, cache
    serve.py     a loopback HTTP server for the tree

`tests/archshaped/make-mirror DIR` builds it and prints ARCHAMI_ARCH_MIRROR=<url> as its last line.
"""
