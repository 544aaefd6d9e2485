"""A local AWS emulator (moto in server mode on 127.0.0.1) for `make demo`, benchmarks and tests.

This machine has no AWS account: the whole publish flow runs against it through --endpoint-url. It
answers every region on one endpoint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from archami.errors import ArchamiError

# Signing needs some credentials; the emulator accepts any. Only set where none are configured.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@contextmanager
def local_emulator(port: int = 0) -> Iterator[str]:
    """Start moto's server on 127.0.0.1 (port 0: any free port); yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ArchamiError("the local AWS emulator needs moto: pip install 'moto[server]'") from exc
    for key, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    # moto logs every request, and a traceback for each action it does not implement (archami reports
    # those itself, e.g. "EnableImageDeprecation is not implemented by this endpoint").
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        yield f"http://{host}:{bound}"
    finally:
        server.stop()
