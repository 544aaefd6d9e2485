"""A local EC2/S3/SSM/EBS emulator (moto in server mode) on a free loopback port, for `archami demo`.

The demo has no AWS account, so it publishes to moto over real HTTP. The environment is pointed at the
emulator with throwaway credentials for the duration, so nothing can reach a real AWS endpoint.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from archami.errors import ToolMissingError

_ENV = {
    "AWS_ACCESS_KEY_ID": "archami-demo",
    "AWS_SECRET_ACCESS_KEY": "archami-demo",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@contextmanager
def local_aws() -> Iterator[str]:
    """Start moto's server on 127.0.0.1 (a free port); yield its endpoint URL; stop it afterwards."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ToolMissingError("the AWS emulator needs moto: pip install 'moto[server]'") from None
    # Quiet: otherwise one access-log line per API call, and a traceback for every API moto lacks (which
    # archami handles: e.g. EnableImageDeprecation).
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its resources in module globals, so a second emulator in the same process would start with
    # the first one's images (CI saw an earlier test's AMIs): every emulator starts as a fresh account.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()
    saved = {k: os.environ.get(k) for k in (*_ENV, *_UNSET, "AWS_ENDPOINT_URL")}
    # AWS_ENDPOINT_URL is a safety net: any client made without --endpoint-url still talks to the emulator.
    os.environ.update(_ENV, AWS_ENDPOINT_URL=url)
    for key in _UNSET:
        os.environ.pop(key, None)
    try:
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
