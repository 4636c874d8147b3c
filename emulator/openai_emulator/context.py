"""The per-app runtime context shared by the middleware and the routes.

``reset`` swaps ``state`` for a fresh one, so routes must always go through the context
(``request.app[CTX].state``) rather than keep a reference to an old state object.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .admin_limit import AdminRateLimit
from .clock import Clock
from .faults import FaultInjector
from .state import EmulatorState


@dataclass
class EmulatorContext:
    state: EmulatorState
    clock: Clock
    faults: FaultInjector = field(default_factory=FaultInjector)
    admin_limit: AdminRateLimit = field(default_factory=AdminRateLimit)
    #: (kind, method, route template, status) -> count; kind is "admin", "data" or "oauth" (the exchange).
    calls: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    #: Called after each request that may have changed state (persistence hooks in here).
    on_change: Callable[[], None] | None = None

    def reset(self) -> None:
        self.clock.offset = 0.0
        self.state = EmulatorState(self.clock, self.state.admin_key)
        self.faults.clear()
        self.admin_limit.set(None)
        self.calls.clear()


CTX = web.AppKey("emulator", EmulatorContext)
