"""What every step gets: the root it works on, the settings, users, and the per-instance state."""

from __future__ import annotations

import json
import os

from .files import read_text, write_atomic
from .settings import STATE_DIR, Settings


class User:
    __slots__ = ("gid", "home", "name", "uid")

    def __init__(self, name: str, uid: int, gid: int, home: str) -> None:
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home


class Context:
    """`root` is "/" on a booting instance (live) or an image root directory in tests (device work skipped)."""

    def __init__(self, root: str, settings: Settings) -> None:
        self.root = os.path.abspath(root)
        self.live = self.root == "/"
        self.settings = settings
        self.state = State(self.path(STATE_DIR + "/state.json"))

    def path(self, absolute: str) -> str:
        return os.path.join(self.root, absolute.lstrip("/"))

    def user(self, name: str) -> User:
        """Look the user up in the root's /etc/passwd (not the host's, when working on a directory)."""
        for line in (read_text(self.path("/etc/passwd")) or "").splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and fields[0] == name:
                return User(name, int(fields[2]), int(fields[3]), fields[5] or "/")
        if name == "root":
            return User("root", 0, 0, "/root")
        raise LookupError(f"user {name!r} is not in /etc/passwd")

    def hostname(self) -> str:
        return (read_text(self.path("/etc/hostname")) or "localhost").strip() or "localhost"


class State:
    """/var/lib/archami/firstboot/state.json: the instance configured last and, per step, the instance-id
    it was last done for. A step is due when its record differs from the current instance-id, which is
    how an AMI made from a running instance gets new keys on its first boot."""

    def __init__(self, path: str) -> None:
        self.path = path
        text = read_text(path)
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}  # a damaged state file must not keep the instance from booting: start afresh
        self.data: dict[str, object] = data if isinstance(data, dict) else {}
        done = self.data.get("done")
        self.done: dict[str, str] = dict(done) if isinstance(done, dict) else {}

    @property
    def instance_id(self) -> str | None:
        value = self.data.get("instance_id")
        return value if isinstance(value, str) else None

    def record(self, **values: object) -> None:
        self.data.update(values)
        self.save()

    def is_due(self, step: str, instance_id: str) -> bool:
        return self.done.get(step) != instance_id

    def mark(self, step: str, instance_id: str) -> None:
        self.done[step] = instance_id
        self.save()

    def save(self) -> None:
        self.data["done"] = self.done
        write_atomic(self.path, (json.dumps(self.data, indent=2, sort_keys=True) + "\n").encode(), 0o644)
