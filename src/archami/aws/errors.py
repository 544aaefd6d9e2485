"""AWS failures a user can act on, as one clear line (ArchamiError), and "not implemented" told apart.

The stage's entry points (`publish`, `prune`, `latest_ami`, `resolve_regions`) are wrapped in
`as_archami_errors`, which turns botocore's and boto3's exceptions into ArchamiError.

Local emulators (moto) answer unimplemented actions with an HTML 500 page: botocore cannot parse it (XML
protocols) or finds no error code in it (JSON protocols, where the code becomes the status, "500");
AWS itself answers unknown actions with InvalidAction/UnsupportedOperation. Either means "not
implemented", which archami reports as such instead of treating it as blocked or failed. These probe calls
go through a client without botocore retries (it would retry the HTML 500 page ten times with backoff), so
the transient errors are retried here, with the same jittered backoff.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from boto3.exceptions import Boto3Error
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from archami.errors import ArchamiError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

NOT_IMPLEMENTED_CODES = {"InvalidAction", "NotImplemented", "UnsupportedOperation"}
THROTTLING_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"}
ATTEMPTS = 8


def one_line(exc: BaseException) -> str:
    """One line for any failure of a step: AWS's code and message for botocore/boto3 errors."""
    if isinstance(exc, BotoCoreError | ClientError | Boto3Error):
        return aws_error_message(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def aws_error_message(exc: BaseException) -> str:
    """One line for a botocore/boto3 failure: the operation, AWS's error code and message."""
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials: configure a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(with --endpoint-url any values do)"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "AWS call")
        return f"{operation} failed: {error.get('Code', '?')}: {error.get('Message', exc)}"
    return f"AWS call failed: {exc}"


def as_archami_errors(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except (BotoCoreError, ClientError, Boto3Error) as exc:  # Boto3Error: e.g. S3UploadFailedError
            raise ArchamiError(aws_error_message(exc)) from exc

    return wrapper


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
