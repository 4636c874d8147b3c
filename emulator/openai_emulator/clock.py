"""A shiftable clock.

Everything time-dependent in the emulator (``created_at``, key expiry, cost buckets, the month a
hard spend limit applies to, rate-limit windows) reads :class:`Clock`, never :func:`time.time`
directly. Tests move it forward through ``POST /_emulator/clock`` to cross a day or a month boundary
without waiting, which is the only way to test budget periods and key expiry honestly and quickly.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

DAY = 86_400


class Clock:
    """Wall-clock time plus an adjustable offset (seconds)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def now_int(self) -> int:
        return int(self.now())

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back, for negative values); returns the new time."""
        self.offset += seconds
        return self.now()

    def set(self, timestamp: float) -> float:
        """Jump to an absolute Unix time; the clock keeps ticking from there."""
        self.offset = timestamp - time.time()
        return self.now()


def day_start(ts: float) -> int:
    """UTC midnight at or before ``ts`` (the costs API aligns daily buckets to UTC midnight)."""
    return int(ts) - int(ts) % DAY


def month_start(ts: float) -> int:
    """First second of the UTC calendar month containing ``ts`` (spend limits are monthly)."""
    d = datetime.fromtimestamp(ts, tz=UTC)
    return calendar.timegm((d.year, d.month, 1, 0, 0, 0))


def next_month_start(ts: float) -> int:
    d = datetime.fromtimestamp(ts, tz=UTC)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0))
