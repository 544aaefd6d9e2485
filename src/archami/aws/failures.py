"""AWS failures as one clear line: the stage's entry points turn botocore exceptions into ArchamiError."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from archami.errors import ArchamiError

P = ParamSpec("P")
R = TypeVar("R")


def as_archami_errors(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except NoCredentialsError as exc:
            raise ArchamiError(
                "no AWS credentials: configure a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "(with --endpoint-url any values do)"
            ) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            operation = getattr(exc, "operation_name", "AWS call")
            raise ArchamiError(f"{operation} failed: {error.get('Code', '?')}: {error.get('Message', exc)}") from exc
        except BotoCoreError as exc:
            raise ArchamiError(f"AWS call failed: {exc}") from exc

    return wrapper
