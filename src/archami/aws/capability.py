"""Tell "this endpoint does not implement the call" apart from a real refusal.

Local emulators (moto) answer unimplemented EC2 actions with an HTML 500 page that botocore cannot parse;
AWS itself answers unknown actions with InvalidAction/UnsupportedOperation. Either means "not
implemented", which archami reports as such instead of treating it as blocked or failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

T = TypeVar("T")

NOT_IMPLEMENTED_CODES = {"InvalidAction", "NotImplemented", "UnsupportedOperation", "InvalidRequest"}


class NotImplementedByEndpoint(Exception):
    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation} is not implemented by this endpoint ({detail})")
        self.operation = operation


def call_or_not_implemented(operation: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ResponseParserError as exc:
        raise NotImplementedByEndpoint(operation, "unparseable answer") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in NOT_IMPLEMENTED_CODES:
            raise NotImplementedByEndpoint(operation, code) from exc
        raise
