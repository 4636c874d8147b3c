"""Small helpers shared by the tests (importable because ``tests`` is on pytest's pythonpath)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy and return that; fail after ``timeout``.

    The failure names ``what`` and the last value seen, so a timeout says what never happened.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)
