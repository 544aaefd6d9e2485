"""linux-ec2: the EC2 kernel built from a Linux source tarball, packaged for pacman and apt.

`fragment` reads configuration fragments and checks they held; `configure` merges a base configuration
with the fragment using the kernel's own kconfig tools; `build` compiles (`make bindeb-pkg`), packages
(`archpkg`, `debpkg`) and caches; `aptrepo` makes the .debs a signed apt repository images install from.
"""
