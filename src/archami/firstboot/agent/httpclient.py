"""A minimal HTTP/1.1 client for the instance metadata service.

Written by hand rather than using http.client on purpose: importing http.client pulls in `email` and `ssl`
and cost ~30 ms of CPU per boot on the measuring machine (the agent's whole budget is 100 ms). IMDS needs
only this subset: one request per connection, no TLS, no redirects, Content-Length or chunked bodies.
It also lets the caller cap a body's size before reading it (a huge user-data is refused unread).
"""

from __future__ import annotations

import socket
import time


class HttpError(OSError):
    """Transport trouble worth a retry: refused, reset, timed out, truncated or garbled."""


class BodyTooLarge(Exception):
    """The response body is larger than the caller accepts; nothing of it was kept."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def split_url(url: str) -> tuple[str, int]:
    """'http://[fd00:ec2::254]:80' -> ('fd00:ec2::254', 80)."""
    if not url.startswith("http://"):
        raise ValueError(f"{url}: only http:// metadata endpoints are supported")
    hostport = url[len("http://") :].split("/", 1)[0]
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 80
        return host, port
    host, _, port_text = hostport.partition(":")
    return host, int(port_text) if port_text else 80


class _Reader:
    """Reads from a socket with one deadline for the whole response."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""

    def _fill(self) -> bool:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise HttpError("timed out reading the response")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError as exc:
            raise HttpError("timed out reading the response") from exc
        self.buffer += chunk
        return bool(chunk)

    def until(self, marker: bytes, limit: int) -> bytes:
        while marker not in self.buffer:
            if len(self.buffer) > limit:
                raise HttpError("response header too long")
            if not self._fill():
                raise HttpError("connection closed before the end of the header")
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise HttpError(f"truncated body: {len(self.buffer)} of {count} bytes")
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def rest(self, limit: int) -> bytes:
        while self._fill():
            if len(self.buffer) > limit:
                raise BodyTooLarge(f"more than {limit} bytes")
        return self.buffer


def request(
    url: str, method: str, path: str, headers: dict[str, str], timeout: float, max_body: int
) -> Response:
    """One request on a fresh connection; `timeout` bounds connect and the whole response together."""
    host, port = split_url(url)
    deadline = time.monotonic() + timeout
    try:
        # A bytes host skips the IDNA codec (and its stringprep import) that a str host costs on every boot.
        # (typeshed says str; getaddrinfo takes bytes too)
        sock = socket.create_connection((host.encode("ascii"), port), timeout=timeout)  # type: ignore[arg-type]
    except TimeoutError as exc:
        raise HttpError(f"{url}: connect timed out") from exc
    except OSError as exc:
        raise HttpError(f"{url}: {exc.strerror or exc}") from exc
    try:
        host_header = f"[{host}]" if ":" in host else host
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}:{port}", "Connection: close",
                 "User-Agent: archami-firstboot", "Accept: */*"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if method in ("PUT", "POST"):
            lines.append("Content-Length: 0")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return _read_response(_Reader(sock, deadline), method, max_body)
    except (TimeoutError, ConnectionError) as exc:
        raise HttpError(f"{url}: {exc}") from exc
    finally:
        sock.close()


def _read_response(reader: _Reader, method: str, max_body: int) -> Response:
    head = reader.until(b"\r\n\r\n", 65536).decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"bad status line {status_line[:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, headers, _read_chunked(reader, max_body))
    length_text = headers.get("content-length")
    if length_text is None:
        return Response(status, headers, reader.rest(max_body))
    if not length_text.isdigit():
        raise HttpError(f"bad Content-Length {length_text[:40]!r}")
    length = int(length_text)
    if length > max_body:
        raise BodyTooLarge(f"{length} bytes, more than {max_body}")
    return Response(status, headers, reader.exactly(length))


def _read_chunked(reader: _Reader, max_body: int) -> bytes:
    body = b""
    while True:
        size_text = reader.until(b"\r\n", 1024).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise HttpError(f"bad chunk size {size_text[:20]!r}") from exc
        if size == 0:
            reader.until(b"\r\n", 65536)  # trailer section ends with an empty line
            return body
        if len(body) + size > max_body:
            raise BodyTooLarge(f"more than {max_body} bytes")
        body += reader.exactly(size)
        reader.exactly(2)
