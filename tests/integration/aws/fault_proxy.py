"""A loopback HTTP proxy in front of moto that fails a seeded fraction of calls the ways AWS does:
throttling (RequestLimitExceeded / ThrottlingException / SlowDown), 5xx, and connections dropped either
before the request reaches the service or after the service acted on it (the answer is lost)."""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass(frozen=True)
class Faults:
    throttle: float = 0.0
    server_error: float = 0.0
    drop_before: float = 0.0
    drop_after: float = 0.0
    seed: int = 0
    # Calls whose first occurrence is acted on by the service and then loses its answer, e.g.
    # "RegisterImage", "CopyImage" (EC2 actions) or "StartSnapshot" (POST /snapshots).
    lose_first_answer: frozenset[str] = frozenset()
    # Faults for the first requests, in order, so every kind is exercised whatever the random draws.
    opening: tuple[str, ...] = ()


def _error_body(path: str, headers: dict[str, str], body: bytes, throttle: bool) -> tuple[int, dict[str, str], bytes]:
    """An error answer in the protocol the caller speaks, so botocore classifies it like the real thing."""
    if "x-amz-target" in headers:  # JSON protocol (SSM)
        code = "ThrottlingException" if throttle else "InternalServerError"
        return (
            (400 if throttle else 500),
            {"Content-Type": "application/x-amz-json-1.1"},
            (f'{{"__type": "{code}", "message": "injected"}}'.encode()),
        )
    if path.startswith("/snapshots"):  # REST-JSON (EBS direct APIs)
        code = "ThrottlingException" if throttle else "InternalServerException"
        return (
            (429 if throttle else 500),
            {"Content-Type": "application/json", "x-amzn-ErrorType": code},
            (b'{"message": "injected"}'),
        )
    if b"Version=2016-11-15" in body:  # EC2 query protocol
        code = "RequestLimitExceeded" if throttle else "InternalError"
        return (
            503 if throttle else 500,
            {"Content-Type": "text/xml"},
            (
                f"<Response><Errors><Error><Code>{code}</Code><Message>injected</Message></Error></Errors>"
                "<RequestID>injected</RequestID></Response>"
            ).encode(),
        )
    code = "SlowDown" if throttle else "InternalError"  # S3 / other XML services
    return (
        503 if throttle else 500,
        {"Content-Type": "application/xml"},
        (f"<Error><Code>{code}</Code><Message>injected</Message><RequestId>x</RequestId></Error>".encode()),
    )


Intercept = Callable[[str, str, bytes], "tuple[int, dict[str, str], bytes] | None"]


class FaultProxy:
    """`intercept(method, path, body)` may answer a call itself (an API the emulator lacks)."""

    def __init__(self, upstream: str, faults: Faults, intercept: Intercept | None = None) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.faults = faults
        self.intercept = intercept
        self.random = random.Random(faults.seed)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self.lost: set[str] = set()
        self.seen = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                fault = proxy.choose(self.command, self.path, body)
                if fault == "drop_before":
                    return self.drop()
                if fault in ("throttle", "server_error"):
                    status, extra, payload = _error_body(self.path, headers, body, fault == "throttle")
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return None
                answer = proxy.intercept(self.command, self.path, body) if proxy.intercept else None
                if answer is not None:
                    status, extra_headers, reply = answer
                    reply_headers = list(extra_headers.items())
                else:
                    status, reply_headers, reply = proxy.forward(self.command, self.path, self.headers.items(), body)
                if fault == "drop_after":
                    return self.drop()
                self.send_response(status)
                for k, v in reply_headers:
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                return None

            def drop(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def choose(self, method: str, path: str, body: bytes) -> str | None:
        if path.startswith("/moto-api"):
            return None
        f = self.faults
        call = "StartSnapshot" if (method, path) == ("POST", "/snapshots") else ""
        for part in body.split(b"&")[:2] if b"Version=2016-11-15" in body else []:
            if part.startswith(b"Action="):
                call = part[7:].decode()
        with self.lock:
            self.seen += 1
            if self.seen <= len(f.opening):
                self.injected[f.opening[self.seen - 1]] += 1
                return f.opening[self.seen - 1]
            if call in f.lose_first_answer and call not in self.lost:
                self.lost.add(call)
                self.injected["drop_after"] += 1
                return "drop_after"
            r = self.random.random()
            for name, p in (
                ("throttle", f.throttle),
                ("server_error", f.server_error),
                ("drop_before", f.drop_before),
                ("drop_after", f.drop_after),
            ):
                if r < p:
                    self.injected[name] += 1
                    return name
                r -= p
            return None

    def forward(self, method: str, path: str, headers: object, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers={k: v for k, v in headers if k.lower() not in HOP_HEADERS})  # type: ignore[attr-defined]
            response = conn.getresponse()
            data = response.read()
            with self.lock:
                self.forwarded += 1
            return response.status, response.getheaders(), data
        finally:
            conn.close()

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
