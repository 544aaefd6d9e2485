# Two entry points (see README): `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP_APT := $(VENV)/.apt-stamp
STAMP_PIP := $(VENV)/.pip-stamp

# Host tools the build, boot test and test suite use (Debian/Ubuntu names; `archami doctor` lists them).
# The kernel's: Debian's Linux 6.1 source and configs (bookworm), and what `make bindeb-pkg` builds with.
APT_PACKAGES := mmdebstrap e2fsprogs dosfstools mtools fdisk gdisk grub-pc-bin grub-efi-amd64-bin \
  grub-common qemu-system-x86 qemu-utils ovmf netcat-openbsd openssh-client zstd \
  qemu-user-static qemu-system-arm qemu-efi-aarch64 \
  pacman-package-manager makepkg arch-install-scripts archlinux-keyring libarchive-tools gnupg \
  chromium python3-venv debian-archive-keyring \
  linux-source-6.1 linux-config-6.1 build-essential fakeroot bc bison flex libssl-dev libelf-dev cpio kmod rsync

.PHONY: deps venv demo test lint docs clean

deps: $(STAMP_APT)
$(STAMP_APT):
	@mkdir -p $(VENV)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing host packages: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@touch $@

venv: $(STAMP_PIP)
$(STAMP_PIP): pyproject.toml $(STAMP_APT)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

demo: venv
	$(VENV)/bin/archami demo examples/debian.toml --out out/demo

# The README's reference sections and docs/archami.1, generated from the schema (tests/unit/test_reference.py).
docs: venv
	$(PY) -m archami.cli.reference_docs README.md docs/archami.1

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

# Unit tests first (fast, no root); then everything that builds, boots or serves, two files at a time: a
# TCG guest or a build keeps about one core busy and much of the rest is waiting (boots, emulators), so two
# workers on two cores keep a cold run well inside CI's time. Each file stays on one worker (its fixtures).
test: venv lint
	$(VENV)/bin/pytest -q tests/unit
	$(VENV)/bin/pytest -q -n 2 --dist loadfile tests --ignore=tests/unit

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
