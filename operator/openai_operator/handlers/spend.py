"""The organisation's spend poller, and the two indexes it fans out through.

There is one poller per operator process (:class:`SpendPoller`, in the memo), and it polls only on
the active replica: it is ticked by a timer on OpenAIProjects, and Kopf stops every timer and daemon
of a replica that peering has paused. Every project's timer ticks the same poller; the poller polls
when its interval is up (or the server's ``Retry-After`` is over after a failure) and ignores the
other ticks, so the number of costs polls does not depend on the number of projects either.

The indexes map OpenAI ids to objects: ``project_spend_index`` by project id, ``key_spend_index``
by every API key id whose cost counts toward a key this period (current, pending, superseded and
revoked credentials), so a rotated key keeps its spend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import kopf
import structlog

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError
from openai_operator.handlers._common import kopf_fn, post
from openai_operator.handlers._errors import retry_after
from openai_operator.handlers._wakeups import Wakeups
from openai_operator.model.resources import GROUP, KEY_PLURAL, PROJECT_PLURAL, VERSION
from openai_operator.model.status import KeyStatus, ProjectStatus
from openai_operator.operations.spend import (
    KeySpendView,
    ProjectSpendView,
    apply_spend,
    key_budget,
    project_budget,
    read_costs,
)
from openai_operator.reconcile.backoff import retry_delay
from openai_operator.reconcile.spend import key_ids, next_period_start

__all__ = ["SpendPoller", "key_spend_index", "project_spend_index", "register"]

log = structlog.get_logger(__name__)

_V = TypeVar("_V")


def project_spend_index(name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                        **_: Any) -> dict[str, ProjectSpendView]:
    """OpenAI project id → the OpenAIProject that manages it (what the poller needs of it)."""
    recorded = ProjectStatus.from_dict(dict(status))
    if recorded.project_id is None or meta.get("deletionTimestamp"):
        return {}
    view = ProjectSpendView(name, meta.get("generation"), project_budget(dict(spec)), recorded)
    return {recorded.project_id: view}


def key_spend_index(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                    **_: Any) -> dict[str, KeySpendView]:
    """API key id → the OpenAIKey it counts toward, for every credential of the key this period."""
    recorded = KeyStatus.from_dict(dict(status))
    if meta.get("deletionTimestamp"):
        return {}
    view = KeySpendView(namespace, name, meta.get("generation"), key_budget(dict(spec)), recorded)
    return dict.fromkeys(key_ids(recorded), view)


def _distinct(index: kopf.Index[str, _V], identity: Callable[[_V], object]) -> list[_V]:
    """Each object once (a key appears under each of its key ids)."""
    seen: dict[object, _V] = {}
    for _, store in index.items():
        for view in store:
            seen.setdefault(identity(view), view)
    return list(seen.values())


class SpendPoller:
    """Polls the costs at most once per interval, however many timers tick it."""

    def __init__(self, deps: Deps, wakeups: Wakeups, interval: timedelta) -> None:
        self._deps, self._wakeups, self._interval = deps, wakeups, interval
        self._lock = asyncio.Lock()
        self._due = 0.0  # monotonic: poll at once on the first tick
        self._failures = 0
        self._newest_bucket: float | None = None

    async def tick(self, projects: Iterable[ProjectSpendView], keys: Iterable[KeySpendView]) -> None:
        """Poll if due; otherwise return at once."""
        if self._lock.locked() or time.monotonic() < self._due:
            return
        async with self._lock:
            await self._poll(list(projects), list(keys))

    async def _poll(self, projects: list[ProjectSpendView], keys: list[KeySpendView]) -> None:
        deps = self._deps
        started = time.monotonic()
        now = deps.clock()
        try:
            report = await read_costs(deps)
            fan_out = await apply_spend(deps, report, projects, keys)
        except OperatorError as error:
            self._failures += 1
            delay = retry_after(error, min(retry_delay(self._failures, "spend-poll"), self._interval))
            self._due = time.monotonic() + delay.total_seconds()
            age = now.timestamp() - self._newest_bucket if self._newest_bucket is not None else None
            deps.metrics.observe_spend_poll(time.monotonic() - started, ok=False, at=now.timestamp(),
                                            period_end=next_period_start(now).timestamp(),
                                            newest_bucket_age_seconds=age)
            log.warning("costs poll failed; status.spend keeps the last values", error=error.message,
                        retry_in_seconds=round(delay.total_seconds(), 1), failures=self._failures)
            return
        self._failures = 0
        self._due = started + self._interval.total_seconds()
        if report.as_of is not None:
            self._newest_bucket = report.as_of.timestamp()
        age = now.timestamp() - self._newest_bucket if self._newest_bucket is not None else None
        deps.metrics.observe_spend_poll(time.monotonic() - started, ok=True, at=now.timestamp(),
                                        period_end=next_period_start(now).timestamp(), newest_bucket_age_seconds=age)
        for body, notes in fan_out.events:
            post(body, notes)
        for namespace, name in fan_out.wake:
            self._wakeups.nudge(namespace, name)
        log.info("costs polled", projects=len(projects), keys=len(keys), written=fan_out.written,
                 alerts=sum(len(n) for _, n in fan_out.events),
                 as_of=report.as_of.isoformat() if report.as_of else None)


async def tick(memo: kopf.Memo, project_spend_index: kopf.Index[str, ProjectSpendView],
               key_spend_index: kopf.Index[str, KeySpendView], **_: Any) -> None:
    poller: SpendPoller | None = memo.get("spend_poller")
    if poller is None:
        poller = memo["spend_poller"] = SpendPoller(memo["deps"], memo["wakeups"], memo["config"].spend_poll_interval)
    await poller.tick(_distinct(project_spend_index, lambda v: v.name),
                      _distinct(key_spend_index, lambda v: (v.namespace, v.name)))


async def forget_project(name: str, memo: kopf.Memo, **_: Any) -> None:
    memo["deps"].metrics.forget_spend("OpenAIProject", "", name)


def tick_interval(config: OperatorConfig) -> float:
    """How often each project's timer ticks the poller: often enough to poll close to when it is due."""
    return max(1.0, min(30.0, config.spend_poll_interval.total_seconds() / 4))


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    projects = (GROUP, VERSION, PROJECT_PLURAL)
    keys = (GROUP, VERSION, KEY_PLURAL)
    kopf.index(*projects, registry=registry)(kopf_fn(project_spend_index))
    kopf.index(*keys, registry=registry)(kopf_fn(key_spend_index))
    interval = tick_interval(config)
    kopf.timer(*projects, registry=registry, id="spend", interval=interval, initial_delay=interval)(kopf_fn(tick))
    kopf.on.delete(*projects, registry=registry, id="forget-spend", optional=True)(kopf_fn(forget_project))
