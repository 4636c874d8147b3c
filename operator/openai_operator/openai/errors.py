"""Turn HTTP outcomes of OpenAI API calls into the operator's domain errors.

The client raises only these (never ``httpx`` exceptions), so ``handlers`` can map every failure
with one ``except`` ladder over :mod:`openai_operator.errors`::

    OperatorError
    ├── TransientError ─── ApiTransientError        408, 429, 5xx, timeouts, connection errors
    ├── PermanentError ─┬─ ApiPermanentError        400, 422 and other 4xx (the API's message)
    │                   ├─ AdminKeyError            401/403 on an admin call: key bad or lacks scopes
    │                   ├─ KeyRejectedError         401 on the data plane: the issued key does not work
    │                   │                           (a data-plane 403 is a plain ApiPermanentError)
    │                   └─ UnexpectedResponseError  2xx with a body we cannot use (shape, paging)
    ├── NotFoundError ──── ApiNotFoundError         404
    └── ConflictError ──── ApiConflictError         409

Every ``Api*`` error carries :class:`ApiErrorDetails` (operation, status, request id, the API's
error ``type``/``code``), so a condition message or a support ticket can quote the request id.
Messages are built from the API's ``error.message`` after :func:`openai_operator.logging.redact`,
because OpenAI echoes (partial) keys in some messages ("Incorrect API key provided: sk-…").
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import httpx

from openai_operator.errors import (
    ConflictError,
    NotFoundError,
    OperatorError,
    PermanentError,
    TransientError,
)
from openai_operator.logging import redact

__all__ = [
    "AdminKeyError",
    "ApiConflictError",
    "ApiError",
    "ApiErrorDetails",
    "ApiNotFoundError",
    "ApiPermanentError",
    "ApiTransientError",
    "KeyRejectedError",
    "UnexpectedResponseError",
    "classify_response",
    "classify_transport_error",
    "is_retryable_status",
    "parse_retry_after",
]

RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_MAX_SNIPPET: Final = 200


@dataclass(frozen=True, slots=True)
class ApiErrorDetails:
    """What is known about a failed call, all safe to log and show (no key material)."""

    operation: str
    status: int | None = None
    request_id: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    api_message: str | None = None


class ApiError(OperatorError):
    """Mixin-style base for errors raised by the OpenAI adapter; ``details`` describes the call.

    It derives from :class:`OperatorError` so ``except ApiError`` works, while each concrete class
    also derives from the domain category (Transient, Permanent, ...) that handlers map.
    """

    details: ApiErrorDetails

    @property
    def status(self) -> int | None:
        """HTTP status of the failed call, or ``None`` when no response arrived."""
        return self.details.status

    @property
    def request_id(self) -> str | None:
        """OpenAI's ``x-request-id`` of the failed call, when the server sent one."""
        return self.details.request_id


class ApiTransientError(TransientError, ApiError):
    """The call may succeed later: rate-limited, a server error, a timeout, a dropped connection."""

    def __init__(self, message: str, details: ApiErrorDetails, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.details = details


class ApiPermanentError(PermanentError, ApiError):
    """The API refused the request as malformed or not allowed (400, 422, other 4xx)."""

    def __init__(self, message: str, details: ApiErrorDetails) -> None:
        super().__init__(message)
        self.details = details


class AdminKeyError(ApiPermanentError):
    """401/403 on an admin endpoint: the admin key is wrong, revoked or lacks a scope.

    Permanent for the operator: nothing it can retry fixes this; someone must replace the key.
    """


class KeyRejectedError(ApiPermanentError):
    """The data plane answered 401 to an issued key: the key is invalid, revoked or expired."""


class UnexpectedResponseError(ApiPermanentError):
    """A successful response the client cannot use (not JSON, missing fields, broken paging).

    Treated as permanent because retrying the same call returns the same body; the details tell a
    human what to report.
    """


class ApiNotFoundError(NotFoundError, ApiError):
    """404: the project, service account, key or spend limit does not exist (any more)."""

    def __init__(self, message: str, details: ApiErrorDetails) -> None:
        super().__init__(message)
        self.details = details


class ApiConflictError(ConflictError, ApiError):
    """409: the request conflicts with the current state (a concurrent change)."""

    def __init__(self, message: str, details: ApiErrorDetails) -> None:
        super().__init__(message)
        self.details = details


def is_retryable_status(status: int) -> bool:
    """Tell whether a response status is worth retrying (timeouts, rate limits, server errors)."""
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(headers: httpx.Headers, *, now: Callable[[], float] = time.time) -> float | None:
    """Return the server's requested delay in seconds, or ``None`` if it gave none.

    Honours ``retry-after-ms`` first (OpenAI's SDK does the same), then ``Retry-After`` as seconds
    or as an HTTP date. Negative, non-finite and unparsable values count as "no hint".
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - now()
        return max(seconds, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """Return ``(message, type, code)`` from OpenAI's error envelope, tolerating any body."""
    try:
        body = json.loads(response.content)
    except ValueError:
        text = response.text.strip()
        return (text[:_MAX_SNIPPET] or None, None, None)
    err = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(err, Mapping):
        msg, typ, code = err.get("message"), err.get("type"), err.get("code")
        return (
            msg if isinstance(msg, str) else None,
            typ if isinstance(typ, str) else None,
            code if isinstance(code, str) else None,
        )
    if isinstance(err, str):
        return (err, None, None)
    return (None, None, None)


def _message(details: ApiErrorDetails, reason: str) -> str:
    parts = [f"{details.operation}: HTTP {details.status} {reason}"]
    if details.api_message:
        parts.append(f": {details.api_message}")
    if details.request_id:
        parts.append(f" (request_id={details.request_id})")
    return "".join(parts)


def response_details(response: httpx.Response, operation: str) -> ApiErrorDetails:
    """Collect the safe facts about a failed response (message redacted and truncated)."""
    api_message, error_type, error_code = _error_fields(response)
    if api_message is not None:
        api_message = redact(api_message)[:500]
    return ApiErrorDetails(
        operation=operation,
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
        error_type=error_type,
        error_code=error_code,
        api_message=api_message,
    )


def classify_response(response: httpx.Response, operation: str, *, data_plane: bool = False) -> OperatorError:
    """Map a non-2xx ``response`` to the domain error the caller should raise.

    ``data_plane`` marks calls made with an issued key rather than the admin key; there a 401 means
    "this key does not work" (:class:`KeyRejectedError`), not "the operator's credentials are bad".
    """
    status = response.status_code
    details = response_details(response, operation)
    reason = response.reason_phrase or "error"
    if data_plane and status == 401:
        return KeyRejectedError(_message(details, "key rejected"), details)
    if data_plane and status == 403:
        return ApiPermanentError(_message(details, "key lacks permission"), details)
    if status in (401, 403):
        what = "admin key rejected" if status == 401 else "admin key lacks permission"
        return AdminKeyError(_message(details, what), details)
    if status == 404:
        return ApiNotFoundError(_message(details, "not found"), details)
    if status == 409:
        return ApiConflictError(_message(details, "conflict"), details)
    if is_retryable_status(status):
        return ApiTransientError(
            _message(details, reason), details, retry_after=parse_retry_after(response.headers)
        )
    return ApiPermanentError(_message(details, reason), details)


def classify_transport_error(exc: httpx.RequestError, operation: str) -> ApiTransientError:
    """Map a transport failure (no usable response, or one that could not be decoded) to a transient error.

    The message names the exception class only: ``str(exc)`` of some transport errors embeds the
    full URL, and the class says everything a caller can act on.
    """
    details = ApiErrorDetails(operation=operation)
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    return ApiTransientError(f"{operation}: {kind} ({type(exc).__name__})", details)


def unexpected_response(
    operation: str, problem: str, response: httpx.Response | None = None
) -> UnexpectedResponseError:
    """Build the error for a 2xx body the client cannot use."""
    details = ApiErrorDetails(
        operation=operation,
        status=response.status_code if response is not None else None,
        request_id=response.headers.get("x-request-id") if response is not None else None,
    )
    suffix = f" (request_id={details.request_id})" if details.request_id else ""
    return UnexpectedResponseError(f"{operation}: unexpected response: {problem}{suffix}", details)
