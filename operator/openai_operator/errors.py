"""The operator's own error tree, classified by what the caller should do next.

Adapters (the OpenAI client, the Secret and Vault stores) raise these instead of library
exceptions; ``handlers`` maps them to Kopf in exactly one place and sets the matching condition::

    OperatorError                     base; never raised itself
    ├── TransientError                retry later (429, 5xx, timeouts, Vault sealed); retry_after in s
    ├── PermanentError                retrying will not help until someone changes something
    │   ├── SpecError                 the spec is invalid; names the field path (Ready=False/InvalidSpec)
    │   └── DestinationConflictError  a Secret or Vault path exists and is not ours; never clobbered
    ├── NotFoundError                 the thing is absent; often a state, not a failure (404 on delete)
    ├── ConflictError                 a write lost a race (409, CAS mismatch); re-read and retry
    └── PolicyError                   the project's key policy refuses this key; a state, re-checked
                                      when the project, the namespace or the key changes

Messages must never carry key material. As a backstop every message goes through the one redactor
(:func:`openai_operator.redaction.redact`, also available here as :func:`scrub`) before it is
stored, because messages end up in conditions, Events and logs; ids stay readable.
"""

from __future__ import annotations

from datetime import timedelta

from openai_operator.redaction import redact

__all__ = [
    "ConflictError",
    "DestinationConflictError",
    "NotFoundError",
    "OperatorError",
    "PermanentError",
    "PolicyError",
    "SpecError",
    "TransientError",
    "retry_after",
    "scrub",
]

scrub = redact
"""The one redactor under its historical name: :func:`openai_operator.redaction.redact`."""


class OperatorError(Exception):
    """Base of every error the operator raises on purpose."""

    def __init__(self, message: str) -> None:
        self.message = scrub(message)
        super().__init__(self.message)


class TransientError(OperatorError):
    """A failure that may go away on its own; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(OperatorError):
    """A failure that retrying cannot fix: bad input, insufficient admin permissions, and the like."""


class SpecError(PermanentError):
    """The object's spec is invalid; ``field_path`` says where (e.g. ``spec.rotation.every``)."""

    def __init__(self, field_path: str, message: str) -> None:
        self.field_path = field_path
        self.detail = scrub(message)
        super().__init__(f"{field_path}: {message}")


class DestinationConflictError(PermanentError):
    """A destination (Secret or Vault path) exists and is owned by someone else, so it is left alone.

    Permanent in the sense that retrying the same write cannot succeed; the reconciler still
    re-checks on the next change, because the owner may delete the foreign object.
    """

    def __init__(self, destination: str, message: str) -> None:
        self.destination = destination
        super().__init__(f"{destination}: {message}")


class NotFoundError(OperatorError):
    """The addressed object does not exist (HTTP 404, absent Secret or Vault path)."""


class ConflictError(OperatorError):
    """A concurrent change won (HTTP 409, resourceVersion or check-and-set mismatch)."""


class PolicyError(OperatorError):
    """The key is not allowed by its project's policy; ``reason`` is a ``Reason`` catalogue value.

    Not a failure of the operator: the condition stays False with this reason until the project,
    the namespace or the key changes, and no retry storm is started.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def retry_after(error: OperatorError, delay: timedelta) -> timedelta:
    """``delay``, or the server's ``Retry-After`` hint when it asks for longer."""
    if isinstance(error, TransientError) and error.retry_after is not None:
        return max(delay, timedelta(seconds=error.retry_after))
    return delay
