"""Retry policy for OpenAI API calls: bounded attempts, full-jitter backoff, server hints honoured.

Why not ``tenacity``: the decision is not "which exception" but a small table over the request's
idempotency, the failure kind and the server's hints (``Retry-After``, ``retry-after-ms``,
``x-should-retry``); written out here it is a few lines, fully unit-tested, and adds no dependency.

The table (:meth:`RetryPolicy.should_retry`):

=========================================  ==========================  =========================
failure                                    idempotent (GET, DELETE,    create (POST that mints a
                                           POST that sets a value)     project, account or key)
=========================================  ==========================  =========================
request never left (connect error/timeout,  retry                       retry
pool timeout)
response lost after sending (read timeout,  retry                       **no**: it may have been
reset, protocol error)                                                  created; find-or-create
                                                                        in the reconciler decides
408, 429, 5xx                               retry                       only 429/503 that carry an
                                                                        explicit Retry-After (the
                                                                        server says "not done,
                                                                        come back")
``x-should-retry: false`` / ``true``        obeyed                      obeyed
any other status                            no                          no
=========================================  ==========================  =========================

Delays: the server's ``Retry-After``/``retry-after-ms`` when given (a hint above
``max_retry_after`` is not slept on in-process: the call fails with ``TransientError(retry_after)``
so Kopf reschedules the handler instead of holding a worker), otherwise full jitter
``uniform(0, min(max_delay, base_delay * 2**(attempt-1)))`` (AWS architecture blog, "Exponential
Backoff And Jitter"), which spreads retries of many keys after a shared outage.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Failure", "RetryPolicy"]


class Failure(enum.Enum):
    """How an attempt failed, as far as retrying is concerned."""

    NOT_SENT = "not_sent"
    """The request never reached the server (connect error or timeout, no pooled connection)."""
    LOST = "lost"
    """The request may have reached the server, but no response came back (read timeout, reset)."""
    STATUS = "status"
    """The server answered with an error status."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds and backoff for retries; the defaults suit a reconcile handler (seconds, not minutes).

    ``max_attempts`` counts the first try, so 4 means up to 3 retries. Worst case without server
    hints is about ``0.5 + 1 + 2 = 3.5`` s of sleeping; with hints, up to ``3 * max_retry_after``.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        """Full-jitter delay after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 30))
        return rand() * ceiling

    def should_retry(
        self,
        *,
        idempotent: bool,
        failure: Failure,
        status: int | None = None,
        retry_after: float | None = None,
        should_retry_header: str | None = None,
    ) -> bool:
        """Decide, per the table in the module docstring, whether this failure may be retried.

        Bounds (attempts, ``max_retry_after``) are checked separately by :meth:`next_delay`.
        """
        if failure is Failure.NOT_SENT:
            return True
        if failure is Failure.LOST:
            return idempotent
        if should_retry_header is not None:
            hint = should_retry_header.strip().lower()
            if hint == "false":
                return False
            if hint == "true":
                return True
        if status is None:
            return False
        if idempotent:
            return status in (408, 429) or status >= 500
        return status in (429, 503) and retry_after is not None

    def next_delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float]) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to stop retrying now."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return max(retry_after, 0.0)
        return self.backoff(attempt, rand)
