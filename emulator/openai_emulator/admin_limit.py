"""The organisation's Admin API rate limit: at most N admitted requests in any one second.

OpenAI limits Admin API requests per organisation and answers 429 ``rate_limit_exceeded`` with a
``Retry-After`` above it. The emulator has no limit until a test sets one
(``POST /_emulator/config {"admin_requests_per_second": N}``); then it keeps a sliding one-second
window of the requests it admitted, in real time (the emulator's movable clock is for dates and
costs, not for pacing). A refused request does not count against the window.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .errors import ApiError

__all__ = ["AdminRateLimit", "admin_rate_limited"]

WINDOW_SECONDS = 1.0


@dataclass
class AdminRateLimit:
    per_second: int | None = None
    refused: int = 0
    """Requests refused so far (tests read it through ``GET /_emulator/config``)."""
    _admitted: deque[float] = field(default_factory=deque)

    def set(self, per_second: int | None) -> None:
        self.per_second = per_second or None
        self._admitted.clear()
        self.refused = 0

    def admit(self, now: float) -> float | None:
        """``None`` if a request at ``now`` is admitted (and counted), else the seconds until one would be."""
        if self.per_second is None:
            return None
        while self._admitted and self._admitted[0] <= now - WINDOW_SECONDS:
            self._admitted.popleft()
        if len(self._admitted) < self.per_second:
            self._admitted.append(now)
            return None
        self.refused += 1
        return max(0.001, self._admitted[0] + WINDOW_SECONDS - now)


def admin_rate_limited(wait: float) -> ApiError:
    return ApiError(
        429,
        f"Rate limit reached for requests. Please try again in {math.ceil(wait * 1000)}ms.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))},
    )
