# Two entry points (see README): `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP_APT := $(VENV)/.apt-stamp
STAMP_PIP := $(VENV)/.pip-stamp

# Host packages: exactly the Debian packages of archami's host tool table (src/archami/hosttools.py, what
# `archami doctor` lists; `PYTHONPATH=src python3 -m archami.hosttools --apt-packages` prints them, and
# tests/unit/test_build_doctor.py checks this copy equals it). Written out here because `make deps` runs on a
# fresh machine before any Python is installed. Without recommends: qemu-system-x86 would pull a desktop
# stack (qemu-system-gui, GTK), grub the signed shim and os-prober; the few recommends archami does use are
# listed by name (ovmf, qemu-utils, arch-test for mmdebstrap's foreign-architecture check, the kernel's tools).
APT_PACKAGES := arch-test archlinux-keyring bc bison build-essential chromium cpio debian-archive-keyring \
  dosfstools dpkg-dev e2fsprogs fakeroot fdisk flex gnupg grub-common grub-efi-amd64-bin grub-pc-bin \
  kmod libarchive-tools libelf-dev libssl-dev linux-config-6.1 linux-source-6.1 makepkg mmdebstrap mtools \
  netcat-openbsd openssh-client ovmf pacman-package-manager python3-venv qemu-efi-aarch64 qemu-system-arm \
  qemu-system-x86 qemu-user-static qemu-utils rsync systemd util-linux xz-utils zstd

.PHONY: deps venv demo test lint docs clean

deps: $(STAMP_APT)
$(STAMP_APT):
	@mkdir -p $(VENV)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing host packages: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
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
