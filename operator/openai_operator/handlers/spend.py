"""The organisation's spend poller, ticked by a timer on OpenAIProjects, and the two indexes it fans out through.

There is one poller per operator process (:class:`~openai_operator.operations.spend.SpendPoller`, in
the memo), and it polls only on the active replica: Kopf stops every timer and daemon of a replica
that peering has paused. Every project's timer ticks the same poller; it polls when its interval is
up (or the server's ``Retry-After`` is over after a failure) and ignores the other ticks, so the
number of costs polls does not depend on the number of projects either.

The indexes map OpenAI ids to objects: ``project_spend_index`` by project id, ``key_spend_index``
by every API key id whose cost counts toward a key this period (current, pending, superseded and
revoked credentials), so a rotated key keeps its spend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import kopf

from openai_operator.config import OperatorConfig
from openai_operator.handlers._common import kopf_fn, post
from openai_operator.model.resources import GROUP, KEY_PLURAL, PROJECT_PLURAL, VERSION, WORKLOAD_IDENTITY_PLURAL
from openai_operator.operations.spend import (
    IdentitySpendView,
    KeySpendView,
    ProjectSpendView,
    SpendPoller,
    identity_spend_entries,
    key_spend_entries,
    project_spend_entry,
)

__all__ = ["identity_spend_index", "key_spend_index", "project_spend_index", "register"]

_V = TypeVar("_V")


async def project_spend_index(name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                        **_: Any) -> dict[str, ProjectSpendView]:
    return project_spend_entry(name, dict(spec), dict(status), dict(meta))


async def key_spend_index(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                    **_: Any) -> dict[str, KeySpendView]:
    return key_spend_entries(namespace, name, dict(spec), dict(status), dict(meta))


async def identity_spend_index(namespace: str, name: str, status: kopf.Status, meta: kopf.Meta,
                         **_: Any) -> dict[str, IdentitySpendView]:
    """Workload identities by their service account id (the id their access-token costs carry)."""
    return identity_spend_entries(namespace, name, dict(status), dict(meta))


def _distinct(index: kopf.Index[str, _V], identity: Callable[[_V], object]) -> list[_V]:
    """Each object once (a key appears under each of its key ids)."""
    seen: dict[object, _V] = {}
    for _, store in index.items():
        for view in store:
            seen.setdefault(identity(view), view)
    return list(seen.values())


async def tick(memo: kopf.Memo, project_spend_index: kopf.Index[str, ProjectSpendView],
               key_spend_index: kopf.Index[str, KeySpendView],
               identity_spend_index: kopf.Index[str, IdentitySpendView] | None = None, **_: Any) -> None:
    poller: SpendPoller | None = memo.get("spend_poller")
    if poller is None:
        poller = memo["spend_poller"] = SpendPoller(memo["deps"], memo["config"].spend_poll_interval, post=post,
                                                    nudge=memo["wakeups"].nudge)
    if identity_spend_index is not None:
        index = identity_spend_index
        poller.identity_targets = lambda: _distinct(index, lambda v: (v.namespace, v.name))
    # A shard that does not manage projects writes the spend of its own keys only.
    manage_projects = memo["config"].manage_projects
    await poller.tick(lambda: (_distinct(project_spend_index, lambda v: v.name) if manage_projects else [],
                               _distinct(key_spend_index, lambda v: (v.namespace, v.name))))


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
    kopf.index(GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL, registry=registry)(kopf_fn(identity_spend_index))
    interval = tick_interval(config)
    kopf.timer(*projects, registry=registry, id="spend", interval=interval, initial_delay=interval)(kopf_fn(tick))
    kopf.on.delete(*projects, registry=registry, id="forget-spend", optional=True)(kopf_fn(forget_project))
