"""Timing rules: failure backoff (and, with rotation, due times and jitter). All take ``now``/inputs."""

from __future__ import annotations

import random
from datetime import timedelta

BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=10)


def failure_backoff(
    failed_attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP, jitter: float | None = None
) -> timedelta:
    """Delay before retrying after ``failed_attempts`` consecutive failures (>= 1).

    ``base * 2**(n-1)``, capped, then scaled into [50%, 100%] by ``jitter`` (a number in [0, 1);
    random when omitted) so that keys failing together do not retry together.
    """
    exponent = min(max(failed_attempts, 1) - 1, 30)
    delay = min(base * (2**exponent), cap)
    fraction = random.random() if jitter is None else jitter
    scaled: timedelta = delay * (0.5 + 0.5 * fraction)
    return scaled
