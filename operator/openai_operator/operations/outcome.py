"""The result of one operation, handed back to the handler that records it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from openai_operator.errors import OperatorError


@dataclass(frozen=True)
class Note:
    """An Event to post on the object. Messages carry ids and redacted forms only, never keys."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Outcome:
    """Status to patch, Events to post, and the error to report once the status is saved."""

    status: dict[str, Any] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    error: OperatorError | None = None
    requeue_after: timedelta | None = None
    """When to look at the object again (the plan's, or the failure backoff's); ``None``: at the resync."""

    def note(self, type: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.notes.append(Note(type, reason, message))
