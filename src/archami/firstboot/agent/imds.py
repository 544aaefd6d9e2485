"""IMDSv2 client: token PUT with a TTL, refresh on 401, IPv4 and IPv6 endpoints, retries, one deadline."""

from __future__ import annotations

import os
import time

from .files import log
from .httpclient import BodyTooLarge, HttpError, request

TOKEN_PATH = "/latest/api/token"
MAX_TEXT = 65536  # every metadata value but user-data is small; a larger answer is garbage


class ImdsUnavailable(Exception):
    """The metadata service could not answer within the deadline (or refused IMDSv2)."""


class ImdsClient:
    def __init__(
        self,
        urls: list[str],
        *,
        deadline: float,
        request_timeout: float,
        token_ttl: int = 21600,
        v1_fallback: bool = False,
    ) -> None:
        if not urls:
            raise ValueError("no metadata endpoint")
        self.urls = list(urls)
        self.deadline = time.monotonic() + deadline
        self.request_timeout = request_timeout
        self.token_ttl = token_ttl
        self.v1_fallback = v1_fallback
        self._token: str | None = None
        self._token_expiry = 0.0
        self._v1 = False
        self._endpoint = 0
        # Backoff scales with the request timeout, so tests that shrink timeouts shrink waits too.
        self._backoff_base = min(0.2, request_timeout / 10)
        self._backoff_cap = max(self._backoff_base, min(2.0, request_timeout))

    def get_text(self, path: str, max_bytes: int = MAX_TEXT) -> str | None:
        try:
            body = self.get(path, max_bytes)
        except BodyTooLarge as exc:
            raise ImdsUnavailable(f"GET {path}: answer too large ({exc})") from exc
        return None if body is None else body.decode("utf-8", errors="replace")

    def get(self, path: str, max_bytes: int) -> bytes | None:
        """GET a metadata path: its body, or None when it does not exist (404). Raises BodyTooLarge."""
        path = "/latest/" + path.lstrip("/")
        refreshes = 0
        attempt = 0
        while True:
            token = self._current_token()
            headers = {} if token is None else {"X-aws-ec2-metadata-token": token}
            try:
                response = request(self._url(), "GET", path, headers, self._timeout(), max_bytes)
            except HttpError as exc:
                self._retry_wait(attempt, f"GET {path}: {exc}", rotate=True)
                attempt += 1
                continue
            if response.status == 200:
                return response.body
            if response.status == 404:
                return None
            if response.status == 401 and not self._v1:
                # The token expired or was revoked mid-run: fetch a new one, a bounded number of times.
                refreshes += 1
                if refreshes > 3:
                    raise ImdsUnavailable(f"GET {path}: 401 even with fresh tokens")
                self._token = None
                continue
            self._retry_wait(attempt, f"GET {path}: HTTP {response.status}", rotate=False)
            attempt += 1

    def _current_token(self) -> str | None:
        if self._v1:
            return None
        if self._token is not None and time.monotonic() < self._token_expiry:
            return self._token
        attempt = 0
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": str(self.token_ttl)}
        while True:
            try:
                response = request(self._url(), "PUT", TOKEN_PATH, headers, self._timeout(), 4096)
            except (HttpError, BodyTooLarge) as exc:
                self._retry_wait(attempt, f"token: {exc}", rotate=True)
                attempt += 1
                continue
            if response.status == 200 and response.body.strip():
                self._token = response.body.decode("ascii", errors="replace").strip()
                # Renew a minute early (or at half the TTL for short ones) so no request carries a dead token.
                self._token_expiry = time.monotonic() + max(1.0, min(self.token_ttl - 60, self.token_ttl / 2))
                return self._token
            if response.status in (403, 404, 405):
                # No token service (an IMDSv1-only endpoint) or a forbidden PUT: retrying will not help.
                if self.v1_fallback:
                    log(f"IMDSv2 token refused (HTTP {response.status}); falling back to IMDSv1 as configured")
                    self._v1 = True
                    return None
                raise ImdsUnavailable(f"IMDSv2 token refused (HTTP {response.status}) and IMDSv1 is not allowed")
            self._retry_wait(attempt, f"token: HTTP {response.status}", rotate=False)
            attempt += 1

    def _url(self) -> str:
        return self.urls[self._endpoint % len(self.urls)]

    def _timeout(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ImdsUnavailable("metadata deadline passed")
        return min(self.request_timeout, remaining)

    def _retry_wait(self, attempt: int, reason: str, *, rotate: bool) -> None:
        if rotate:
            self._endpoint += 1  # connection trouble: try the other endpoint (IPv4 <-> IPv6) next
        delay = min(self._backoff_cap, self._backoff_base * (2**attempt))
        delay *= 0.5 + int.from_bytes(os.urandom(1), "big") / 510  # jitter: 50-100 %
        remaining = self.deadline - time.monotonic()
        if remaining <= delay:
            raise ImdsUnavailable(f"gave up: {reason}")
        if attempt in (0, 3) or attempt % 10 == 9:
            log(f"retrying: {reason}")
        time.sleep(delay)
