"""The first-boot agent (agent/, standard library only, runs inside the image) and its installer (install.py).

The agent is copied into the image as /usr/lib/archami/archami_agent/ with a launcher
/usr/lib/archami/firstboot.py; systemd units in units/ run it before sshd on every boot.
"""
