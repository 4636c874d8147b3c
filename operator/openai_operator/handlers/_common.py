"""Helpers shared by the handlers: posting an Outcome's Events, reading the indexes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

from openai_operator.logging import redact
from openai_operator.operations.outcome import Note
from openai_operator.reconcile.policy import ProjectView


def kopf_fn(fn: Any) -> Any:
    """Hand a handler to Kopf's decorators.

    Kopf passes index contents as extra keyword arguments that its callback protocols do not
    declare, so handlers that take them cannot satisfy those protocols' static types.
    """
    return cast(Any, fn)


def post(body: Mapping[str, Any], notes: Iterable[Note]) -> None:
    """Post each note as an Event on ``body`` (messages redacted once more, as a backstop)."""
    for note in notes:
        kopf.event(cast(kopf.Body, body), type=note.type, reason=note.reason, message=redact(note.message))


def project_view(project_index: kopf.Index[str, ProjectView], name: str | None) -> ProjectView | None:
    if not name:
        return None
    found = project_index.get(name)
    if found is None:
        return None
    for view in found:
        return view
    return None
