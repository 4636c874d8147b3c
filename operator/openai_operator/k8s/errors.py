"""Classify apiserver failures into the project's own errors, without their bodies.

A Status body can echo the object that was sent, Secret data included, so only the status, the
reason and the ``Retry-After`` header are kept (:class:`~openai_operator.k8s.api.KubeStatusError`
carries nothing else).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from openai_operator.errors import (
    ConflictError,
    NotFoundError,
    OperatorError,
    PermanentError,
    TransientError,
)
from openai_operator.k8s.api import KubeStatusError


def _retry_after(error: KubeStatusError) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if present and valid."""
    raw = error.retry_after
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_VERB_NOUN: Final = {"get": "read", "create": "create", "update": "update", "delete": "delete"}


def classify_api_exception(
    error: KubeStatusError, verb: str, what: str, *, resource: str, namespace: str | None = None
) -> OperatorError:
    """One apiserver failure as the project's error; only status and reason, never the body.

    ``verb`` (``get``, ``create``, ``update``, ``patch``, ``delete``) and ``resource`` (e.g.
    ``secrets``) name the RBAC permission a 403 is missing; ``what`` names the object.
    """
    status = int(error.status or 0)
    where = f" in namespace {namespace}" if namespace else ""
    answer = f"HTTP {status} {error.reason or ''}".strip() if status else error.reason
    text = f"{_VERB_NOUN.get(verb, verb)} {what}: {answer}"
    if status == 404:
        return NotFoundError(text)
    if status == 409:
        return ConflictError(f"{text} (changed concurrently; re-read and retry)")
    if status == 401:
        return PermanentError(f"{text} (the operator's Kubernetes credentials were rejected)")
    if status == 403:
        return PermanentError(
            f"{text} (the operator's ServiceAccount lacks permission to {verb} {resource}{where})"
        )
    if status == 429 or status >= 500 or status == 0:
        return TransientError(text, retry_after=_retry_after(error))
    return PermanentError(text)
