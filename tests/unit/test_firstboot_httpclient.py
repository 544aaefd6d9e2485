"""The agent's minimal HTTP client: status, headers, Content-Length and chunked bodies, caps, truncation."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from archami.firstboot.agent.httpclient import BodyTooLarge, HttpError, request, split_url


def serve_once(reply: bytes) -> tuple[str, list[bytes]]:
    """A one-shot loopback server that answers the first request with `reply` and closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            seen.append(data)
            conn.sendall(reply)
        listener.close()

    threading.Thread(target=answer, daemon=True).start()
    return f"http://127.0.0.1:{port}", seen


def test_split_url() -> None:
    assert split_url("http://169.254.169.254") == ("169.254.169.254", 80)
    assert split_url("http://[fd00:ec2::254]") == ("fd00:ec2::254", 80)
    assert split_url("http://[::1]:8080/x") == ("::1", 8080)
    assert split_url("http://127.0.0.1:9") == ("127.0.0.1", 9)
    with pytest.raises(ValueError):
        split_url("https://169.254.169.254")


def test_content_length_body_and_request_shape() -> None:
    url, seen = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: a:b\r\n\r\nhello")
    response = request(url, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"}, 5, 100)
    assert (response.status, response.body, response.headers["x-thing"]) == (200, b"hello", "a:b")
    sent = seen[0].decode()
    assert sent.startswith("PUT /latest/api/token HTTP/1.1\r\n")
    assert "X-aws-ec2-metadata-token-ttl-seconds: 60\r\n" in sent and "Content-Length: 0\r\n" in sent


def test_chunked_body() -> None:
    url, _ = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n")
    assert request(url, "GET", "/", {}, 5, 100).body == b"abcdefg"


def test_body_until_close() -> None:
    url, _ = serve_once(b"HTTP/1.0 404 Not Found\r\n\r\nnope")
    response = request(url, "GET", "/", {}, 5, 100)
    assert (response.status, response.body) == (404, b"nope")


def test_too_large_is_refused_unread() -> None:
    url, _ = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
    with pytest.raises(BodyTooLarge):
        request(url, "GET", "/", {}, 5, 16384)


def test_truncated_body_is_an_error() -> None:
    url, _ = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
    with pytest.raises(HttpError, match="truncated"):
        request(url, "GET", "/", {}, 5, 100)


def test_garbage_status_line() -> None:
    url, _ = serve_once(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    with pytest.raises(HttpError, match="bad status line"):
        request(url, "GET", "/", {}, 5, 100)


def test_refused_and_silent_servers_fail_within_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog) but never answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(HttpError):
            request(f"http://127.0.0.1:{port}", "GET", "/", {}, 0.3, 100)
        assert time.monotonic() - started < 1.5
    with pytest.raises(HttpError):
        request(f"http://127.0.0.1:{port}", "GET", "/", {}, 0.3, 100)  # now closed: refused
