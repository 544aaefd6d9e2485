"""A minimal QMP (QEMU Machine Protocol) client over a Unix socket.

Written by hand: the boot test needs two commands (system_powerdown, query-status); the maintained
`qemu.qmp` package is asyncio-only and would be a dependency for about forty lines of line-delimited JSON.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


class QmpClient:
    """Connect, negotiate capabilities, execute commands; a context manager closes the socket."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
            self._file = self._sock.makefile("rwb")
            greeting = self._read()
            if "QMP" not in greeting:
                raise OSError(f"not a QMP greeting: {greeting!r}")
            self.execute("qmp_capabilities")
        except BaseException:
            self._sock.close()
            raise

    def _read(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise OSError("QMP connection closed")
        message: dict[str, Any] = json.loads(line)
        return message

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Send one command; skip asynchronous events until its reply; raise OSError on a QMP error."""
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._file.write(json.dumps(request).encode() + b"\n")
        self._file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise OSError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
            return reply.get("return")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> QmpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
