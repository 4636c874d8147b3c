"""The one place where the project's errors become Kopf's.

``PermanentError`` (bad spec, refused request, foreign destination) → ``kopf.PermanentError``;
``ConflictError`` → a quick retry (someone else changed the object); anything else →
``kopf.TemporaryError`` after ``delay``, which the caller takes from the object's failure backoff
(:mod:`openai_operator.reconcile.backoff`, kept in status) or the server's ``Retry-After``,
whichever is longer. There is no second clock here: no jitter of its own.
"""

from __future__ import annotations

from datetime import timedelta

import kopf

from openai_operator.errors import ConflictError, OperatorError, PermanentError, retry_after

__all__ = ["raise_for", "retry_after"]


def raise_for(error: OperatorError | None, *, delay: timedelta) -> None:
    """Raise the Kopf exception for ``error`` (nothing when ``error`` is ``None``)."""
    if error is None:
        return
    if isinstance(error, PermanentError):
        raise kopf.PermanentError(error.message)
    if isinstance(error, ConflictError):
        raise kopf.TemporaryError(error.message, delay=1)
    raise kopf.TemporaryError(error.message, delay=retry_after(error, delay).total_seconds())
