"""The one place where the project's errors become Kopf's.

``TransientError`` → ``kopf.TemporaryError`` with the server's retry hint, or an exponential
backoff from the object's ``failedAttempts`` (capped, jittered) so a failing API sees no retry storm;
``PermanentError`` (bad spec, refused request, foreign destination) → ``kopf.PermanentError``;
``ConflictError`` → a quick retry (someone else changed the object); ``NotFoundError`` → a slow one.
"""

from __future__ import annotations

from datetime import timedelta

import kopf

from openai_operator.errors import ConflictError, OperatorError, PermanentError, TransientError
from openai_operator.reconcile.schedule import failure_backoff


def raise_for(error: OperatorError | None, *, failed_attempts: int = 1) -> None:
    """Raise the Kopf exception for ``error`` (nothing when ``error`` is ``None``)."""
    if error is None:
        return
    if isinstance(error, PermanentError):
        raise kopf.PermanentError(error.message)
    if isinstance(error, ConflictError):
        raise kopf.TemporaryError(error.message, delay=1)
    delay = failure_backoff(max(failed_attempts, 1))
    if isinstance(error, TransientError) and error.retry_after is not None:
        delay = max(delay, timedelta(seconds=error.retry_after))
    raise kopf.TemporaryError(error.message, delay=delay.total_seconds())
