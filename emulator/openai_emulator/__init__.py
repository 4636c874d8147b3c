"""A local emulator of the OpenAI Admin API and data plane, faithful enough to test the operator.

Start it with ``openai-emulator --port N`` (see :func:`server.serve`), or in tests with
:class:`EmulatorServer` (async) or :class:`ThreadedEmulator` (sync). The control endpoints under
``/_emulator`` are documented in :mod:`openai_emulator.control`. Workload identity federation
(providers, federation rules, the token exchange at ``POST /oauth/token`` and its access tokens) is
in :mod:`openai_emulator.wif` and :mod:`openai_emulator.routes_wif`, with the assumptions it makes
in ``docs/emulator-workload-identity.md``.
"""

from __future__ import annotations

from .app import build_app
from .clock import Clock
from .context import EmulatorContext
from .errors import ApiError
from .faults import FaultInjector, FaultRule
from .keys import new_admin_key, redact
from .pricing import MODELS
from .server import EmulatorServer, ThreadedEmulator, serve
from .state import EmulatorState

__all__ = [
    "MODELS",
    "ApiError",
    "Clock",
    "EmulatorContext",
    "EmulatorServer",
    "EmulatorState",
    "FaultInjector",
    "FaultRule",
    "ThreadedEmulator",
    "build_app",
    "new_admin_key",
    "redact",
    "serve",
]
