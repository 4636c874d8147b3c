"""Nudges for the per-key daemons: a change handler or the inventory wakes a key's loop at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

__all__ = ["Wakeups"]


class Wakeups:
    """One event per key; :meth:`wait` returns on a nudge, on stop, or after ``timeout``."""

    def __init__(self) -> None:
        self._events: defaultdict[tuple[str, str], asyncio.Event] = defaultdict(asyncio.Event)

    def nudge(self, namespace: str, name: str) -> None:
        self._events[(namespace, name)].set()

    def forget(self, namespace: str, name: str) -> None:
        self._events.pop((namespace, name), None)

    async def wait(self, namespace: str, name: str, seconds: float, stopped: Any) -> None:
        event = self._events[(namespace, name)]
        if not event.is_set():
            nudged = asyncio.ensure_future(event.wait())
            stopping = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait({nudged, stopping}, timeout=max(seconds, 0.0),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (nudged, stopping):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        event.clear()
