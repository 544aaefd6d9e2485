"""Measuring mirrors: time to first byte and download rate of one repository file, many mirrors at once.

Each request has a connect timeout and a total deadline that also bounds every read, so a mirror that
accepts and then hangs (or trickles bytes) costs at most `deadline` seconds of one worker thread. http.client
is used directly instead of urllib because urllib's timeout is per socket operation, with no total deadline.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from archami.mirrors.status import Mirror

DEFAULT_PATH = "core/os/x86_64/core.db"
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Timeouts:
    connect: float = 3.0  # seconds to open the connection
    deadline: float = 10.0  # seconds for the whole request, connection and body included


@dataclass(frozen=True)
class Measurement:
    url: str  # the mirror's base URL
    ok: bool
    latency: float | None = None  # seconds from start to response headers
    seconds: float | None = None  # seconds for the whole download
    size: int = 0  # bytes received
    error: str = ""

    @property
    def rate(self) -> float | None:
        """Bytes per second over the whole request."""
        if not self.ok or not self.seconds:
            return None
        return self.size / self.seconds


class _DeadlineExceeded(Exception):
    pass


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported URL {url!r} (http or https only)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        ), path
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout), path


def fetch(url: str, timeouts: Timeouts, clock: Callable[[], float] = time.monotonic) -> tuple[float, int]:
    """Download url within the deadline; return (seconds to headers, bytes). Raises on any failure."""
    start = clock()
    deadline = start + timeouts.deadline

    def remaining() -> float:
        left = deadline - clock()
        if left <= 0:
            raise _DeadlineExceeded(f"deadline of {timeouts.deadline:g}s passed")
        return left

    for _ in range(_MAX_REDIRECTS + 1):
        conn, path = _connection(url, min(timeouts.connect, remaining()))
        try:
            conn.connect()
            # Kept: http.client drops conn.sock once the response owns the connection, but the response
            # reads through this same socket, so its timeout still bounds every read.
            sock = conn.sock
            assert sock is not None
            sock.settimeout(remaining())
            conn.request("GET", path, headers={"User-Agent": "archami-mirrors", "Accept-Encoding": "identity"})
            response = conn.getresponse()
            latency = clock() - start
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                url = urllib.parse.urljoin(url, response.getheader("Location", ""))
                continue
            if response.status != 200:
                raise OSError(f"HTTP {response.status} {response.reason}")
            size = 0
            while True:
                sock.settimeout(remaining())
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
            remaining()
            return latency, size
        finally:
            conn.close()
    raise OSError(f"more than {_MAX_REDIRECTS} redirects")


def measure_one(mirror: Mirror, path: str, timeouts: Timeouts) -> Measurement:
    start = time.monotonic()
    try:
        latency, size = fetch(mirror.file_url(path), timeouts)
    except (OSError, ValueError, http.client.HTTPException, _DeadlineExceeded) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        return Measurement(url=mirror.url, ok=False, seconds=time.monotonic() - start, error=reason)
    if size == 0:
        return Measurement(url=mirror.url, ok=False, seconds=time.monotonic() - start, error="empty response")
    return Measurement(url=mirror.url, ok=True, latency=latency, seconds=time.monotonic() - start, size=size)


def measure(
    mirrors: Sequence[Mirror],
    *,
    path: str = DEFAULT_PATH,
    timeouts: Timeouts = Timeouts(),
    concurrency: int = 8,
    on_result: Callable[[Measurement], None] | None = None,
) -> list[Measurement]:
    """Measure every mirror with at most `concurrency` requests in flight; results in the mirrors' order."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")

    def one(mirror: Mirror) -> Measurement:
        result = measure_one(mirror, path, timeouts)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mirror") as pool:
        return list(pool.map(one, mirrors))
