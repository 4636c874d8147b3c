"""The Admin API request budget: one client-side rate limit shared by every handler and poller.

OpenAI rate-limits the Admin API per organisation. A thousand keys rotating at once, the inventory
sweeps and the costs poller all draw on that one allowance; without a shared budget they discover
the limit by hitting it, and every 429 costs a retry and a delay chosen per request. With a budget
the operator paces itself below the limit, so OpenAI never has to refuse it.

Two rules, both in :class:`RequestBudget`:

* a token bucket: ``rate`` requests per second on average, at most ``burst`` at once after a
  quiet spell. Waiters are served first come, first served (one lock), so a long rotation wave
  cannot starve the costs poller.
* a shared hold: a 429 that says ``Retry-After: N`` means "the organisation is over its limit",
  not "this request is", so every request waits until the hold ends, not only the refused one.
  The hold applies with or without a rate (``rate=None`` is "no pacing, still honour holds").

Why not ``aiolimiter``: it paces, but has no shared hold and no injectable clock; both are a few
lines here and fully unit-tested (``tests/unit/test_request_budget.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["RequestBudget"]


class RequestBudget:
    """Pace requests to ``rate`` per second (bursts of ``burst``) and honour shared ``Retry-After`` holds.

    Args:
        rate: requests per second on average; ``None`` paces nothing (holds still apply).
        burst: how many requests may go at once after a quiet spell (the bucket's size); at least 1.
        on_wait: called with the seconds a request waited, when it waited (the metrics hook).
        clock, sleep: injectable for tests.
    """

    def __init__(
        self,
        rate: float | None = None,
        *,
        burst: int = 1,
        on_wait: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no pacing)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._filled_at = clock()
        self._held_until = 0.0
        self._lock = asyncio.Lock()
        self._on_wait = on_wait
        self.waited_seconds = 0.0
        """Total time requests have waited for the budget."""

    @property
    def rate(self) -> float | None:
        return self._rate

    def hold(self, seconds: float) -> None:
        """Stop every request for ``seconds`` from now (a 429's ``Retry-After``); holds only lengthen."""
        if seconds > 0:
            self._held_until = max(self._held_until, self._clock() + seconds)

    def _refill(self, now: float) -> None:
        if self._rate is not None:
            self._tokens = min(self._burst, self._tokens + max(0.0, now - self._filled_at) * self._rate)
        self._filled_at = max(self._filled_at, now)

    def _delay(self, now: float) -> float:
        """How long the next request must still wait at ``now`` (0: it may go)."""
        held = max(0.0, self._held_until - now)
        if held > 0 or self._rate is None:
            return held
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate

    async def acquire(self) -> float:
        """Wait until one request may go; return the seconds waited."""
        waited = 0.0
        async with self._lock:
            now = self._clock()
            while True:
                self._refill(now)
                delay = self._delay(now)
                if delay <= 0:
                    if self._rate is not None:
                        self._tokens -= 1.0
                    break
                await self._sleep(delay)
                waited += delay
                # A sleep lasts at least what was asked, even under a clock that does not move (tests).
                now = max(self._clock(), now + delay)
        if waited:
            self.waited_seconds += waited
            if self._on_wait is not None:
                self._on_wait(waited)
        return waited
