"""Tell "this endpoint does not implement the call" apart from a real refusal.

Local emulators (moto) answer unimplemented actions with an HTML 500 page: botocore cannot parse it (XML
protocols) or finds no error code in it (JSON protocols, where the code becomes the status, "500");
AWS itself answers unknown actions with InvalidAction/UnsupportedOperation. Either means "not
implemented", which archami reports as such instead of treating it as blocked or failed.

These probe calls go through a client without botocore retries (it would retry the HTML 500 page ten
times with backoff), so the transient errors are retried here, with the same jittered backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.parsers import ResponseParserError

from archami.errors import ArchamiError

T = TypeVar("T")

NOT_IMPLEMENTED_CODES = {"InvalidAction", "NotImplemented", "UnsupportedOperation"}
THROTTLING_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"}
ATTEMPTS = 8


class NotImplementedByEndpoint(ArchamiError):
    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation} is not implemented by this endpoint ({detail})")
        self.operation = operation


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(20.0, 0.5 * 2**attempt)))  # "full jitter", as botocore does


def call_or_not_implemented(operation: str, call: Callable[[], T]) -> T:
    for attempt in range(ATTEMPTS):
        last = attempt == ATTEMPTS - 1
        try:
            return call()
        except ResponseParserError as exc:
            raise NotImplementedByEndpoint(operation, "unparseable answer") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in NOT_IMPLEMENTED_CODES:
                raise NotImplementedByEndpoint(operation, code) from exc
            if status >= 500 and code == str(status):  # no AWS error in the body: an HTML error page
                raise NotImplementedByEndpoint(operation, f"HTTP {status} without an AWS error") from exc
            if last or not (status >= 500 or code in THROTTLING_CODES):
                raise
        except (ConnectionClosedError, EndpointConnectionError, ReadTimeoutError):
            if last:
                raise
        _backoff(attempt)
    raise AssertionError("unreachable")
