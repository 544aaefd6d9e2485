"""pacman's formats in Python: version comparison, .PKGINFO, package archives, sync databases, signing.

Written by hand because no maintained Python library writes pacman packages or sync databases; real
pacman, repo-add and bsdtar check what these modules write (tests/integration/test_repo_*.py).
"""

from archami.pacman.vercmp import vercmp

__all__ = ["vercmp"]
