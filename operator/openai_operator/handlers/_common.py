"""The handler skeleton, once: lock, read, run, post Events, record metrics.

Every handler of both kinds is this skeleton around one operation: under the object's lock it reads
the object fresh (or takes the body Kopf handed over, for deletion), runs the operation — which saves
status itself, step by step — then posts the operation's Events and records the pass. Errors are left
to the caller, which maps them once (:mod:`._errors`) or, in the key daemon, waits them out.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

import kopf

from openai_operator.deps import Deps
from openai_operator.operations.outcome import Note, Outcome
from openai_operator.reconcile.policy import ProjectView
from openai_operator.redaction import redact

__all__ = ["kopf_fn", "one_pass", "post", "project_view"]


def kopf_fn(fn: Any) -> Any:
    """Hand a handler to Kopf's decorators.

    Kopf passes index contents as extra keyword arguments that its callback protocols do not
    declare, so handlers that take them cannot satisfy those protocols' static types.
    """
    return cast(Any, fn)


def post(body: Mapping[str, Any], notes: Iterable[Note]) -> None:
    """Post each note as an Event on ``body`` (messages pass the redactor once more, as a backstop)."""
    for note in notes:
        kopf.event(cast(kopf.Body, body), type=note.type, reason=note.reason, message=redact(note.message))


async def one_pass(
    deps: Deps,
    kind: str,
    namespace: str | None,
    name: str,
    read: Callable[[], Awaitable[Mapping[str, Any] | None]],
    operate: Callable[[Mapping[str, Any]], Awaitable[Outcome]],
    *,
    deleting: bool = False,
) -> Outcome | None:
    """Run ``operate`` on a fresh read of the object under its lock; ``None`` when there is nothing to do.

    ``deleting``: the pass is the finalizer's, so an object being deleted is worked on, not skipped.
    """
    started = time.monotonic()
    ok = False
    try:
        async with deps.lock(kind, namespace, name):
            body = await read()
            if body is None or (body["metadata"].get("deletionTimestamp") and not deleting):
                ok = True
                return None
            outcome = await operate(body)
        ok = outcome.error is None
    finally:
        deps.metrics.observe_reconcile(kind, time.monotonic() - started, ok=ok)
    post(body, outcome.notes)
    return outcome


def project_view(project_index: kopf.Index[str, ProjectView], name: str | None) -> ProjectView | None:
    if not name:
        return None
    found = project_index.get(name)
    if found is None:
        return None
    for view in found:
        return view
    return None
