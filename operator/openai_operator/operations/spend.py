"""The spend poll: read the organisation's costs once, then bring each object's ``status.spend`` up to date.

:func:`read_costs` is the only Admin API work of a poll: ``GET /organization/costs`` from the start
of the month, grouped by project and API key, one page of up to 31 daily buckets (more pages only
if OpenAI splits them), whatever the number of keys. :func:`apply_spend` then fans the sums out to
the objects it is given (from the indexes, by project id and by API key id): it assesses each from
the index's copy of its status, and only where something changed does it take the object's lock,
read it fresh, assess again and patch the spend fields. So a poll that learns nothing writes
nothing, and a key pass running at the same time never overwrites (or is overwritten by) the poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import structlog
from pydantic import ValidationError

from openai_operator.deps import Deps
from openai_operator.errors import OperatorError, retry_after
from openai_operator.model.conditions import ConditionType
from openai_operator.model.identity import WorkloadIdentityStatus
from openai_operator.model.specs import KeyBudget, ProjectBudget
from openai_operator.model.status import KeyStatus, ProjectStatus, Spend
from openai_operator.operations.outcome import Note
from openai_operator.reconcile.backoff import retry_delay
from openai_operator.reconcile.spend import (
    BudgetAlert,
    CostReport,
    CostRow,
    assess_key,
    assess_project,
    cost_report,
    identity_spend,
    key_ids,
    next_period_start,
    period_start,
    spend_fields,
)

__all__ = [
    "FanOut",
    "IdentitySpendView",
    "KeySpendView",
    "ProjectSpendView",
    "SpendPoller",
    "apply_identity_spend",
    "apply_spend",
    "identity_spend_entries",
    "key_budget",
    "key_spend_entries",
    "project_budget",
    "project_spend_entry",
    "read_costs",
]

log = structlog.get_logger(__name__)

COST_PAGE_BUCKETS = 31
"""Daily buckets asked for per page: a whole month fits in one."""


@dataclass(frozen=True)
class ProjectSpendView:
    """What the poller needs of one OpenAIProject (kept in an index, by OpenAI project id)."""

    name: str
    generation: int | None
    budget: ProjectBudget | None
    status: ProjectStatus


@dataclass(frozen=True)
class KeySpendView:
    """What the poller needs of one OpenAIKey (kept in an index, by each API key id it counts)."""

    namespace: str
    name: str
    generation: int | None
    budget: KeyBudget | None
    status: KeyStatus


_B = TypeVar("_B", ProjectBudget, KeyBudget)


def _read_budget(spec: Mapping[str, Any], model: type[_B]) -> tuple[_B | None, bool]:
    """``spec.budget`` parsed (``None`` when unset), and whether it is set but malformed: the object's
    own pass reports a malformed one, and the poll leaves its spend status alone rather than treat
    it as having no budget."""
    raw = spec.get("budget")
    if raw is None:
        return None, False
    try:
        return model.model_validate(raw), False
    except ValidationError:
        return None, True


def project_budget(spec: Mapping[str, Any]) -> ProjectBudget | None:
    """``spec.budget`` of a project, or ``None`` when unset or malformed (the reconcile reports that)."""
    return _read_budget(spec, ProjectBudget)[0]


def key_budget(spec: Mapping[str, Any]) -> KeyBudget | None:
    """``spec.budget`` of a key, or ``None`` when unset or malformed (the key's pass reports that)."""
    return _read_budget(spec, KeyBudget)[0]


def project_spend_entry(name: str, spec: Mapping[str, Any], status: Mapping[str, Any],
                        meta: Mapping[str, Any]) -> dict[str, ProjectSpendView]:
    """The index entry of one OpenAIProject: its OpenAI project id → what the poller needs of it."""
    recorded = ProjectStatus.from_dict(status)
    if recorded.project_id is None or meta.get("deletionTimestamp"):
        return {}
    return {recorded.project_id: ProjectSpendView(name, meta.get("generation"), project_budget(spec), recorded)}


def key_spend_entries(namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any],
                      meta: Mapping[str, Any]) -> dict[str, KeySpendView]:
    """The index entries of one OpenAIKey: every API key id whose cost counts toward it this period."""
    if meta.get("deletionTimestamp"):
        return {}
    recorded = KeyStatus.from_dict(status)
    view = KeySpendView(namespace, name, meta.get("generation"), key_budget(spec), recorded)
    return dict.fromkeys(key_ids(recorded), view)


@dataclass(frozen=True)
class IdentitySpendView:
    """What the poller needs of one OpenAIWorkloadIdentity (indexed by its service account id)."""

    namespace: str
    name: str
    service_account_id: str
    spend: Spend | None


def identity_spend_entries(namespace: str, name: str, status: Mapping[str, Any],
                           meta: Mapping[str, Any]) -> dict[str, IdentitySpendView]:
    """The index entry of one OpenAIWorkloadIdentity: its service account id → what the poller needs."""
    if meta.get("deletionTimestamp"):
        return {}
    recorded = WorkloadIdentityStatus.from_dict(status)
    if recorded.service_account_id is None:
        return {}
    return {recorded.service_account_id: IdentitySpendView(namespace, name, recorded.service_account_id,
                                                           recorded.spend)}


async def apply_identity_spend(deps: Deps, report: CostReport, identities: Iterable[IdentitySpendView],
                               out: FanOut) -> None:
    """``status.spend`` of each workload identity; written only when it changed (read fresh under its lock)."""
    cluster = deps.identity_cluster
    if cluster is None:
        return
    for view in identities:
        spend = identity_spend(view.spend, view.service_account_id, report)
        if spend is None or (view.spend is not None and spend.to_dict() == view.spend.to_dict()):
            continue
        try:
            async with deps.lock("OpenAIWorkloadIdentity", view.namespace, view.name):
                body = await cluster.get_workload_identity(view.namespace, view.name)
                if body is None or body["metadata"].get("deletionTimestamp"):
                    continue
                current = WorkloadIdentityStatus.from_dict(body.get("status"))
                fresh = identity_spend(current.spend, current.service_account_id, report)
                if fresh is None or (current.spend is not None and fresh.to_dict() == current.spend.to_dict()):
                    continue
                await cluster.patch_workload_identity_status(view.namespace, view.name, {"spend": fresh.to_dict()})
                out.written += 1
            deps.metrics.set_spend("OpenAIWorkloadIdentity", view.namespace, view.name, fresh.month_to_date_usd,
                                   fresh.forecast_usd, None)
        except OperatorError as error:
            out.failed.append((f"{view.namespace}/{view.name}", error.message))


async def read_costs(deps: Deps) -> CostReport:
    """This month's costs for the whole organisation, by project and API key (one paged call).

    The month is OpenAI's: the period comes from OpenAI's clock (its ``Date`` header), so a skewed
    local clock cannot sum the wrong month. If the answer shows that OpenAI's month is not the one
    asked for (the first poll, or a month boundary passed meanwhile), the read is repeated once.
    """
    asked = period_start(deps.admin.server_time(deps.clock()))
    for _ in range(2):
        buckets = await deps.admin.costs(start_time=asked, group_by=("project_id", "api_key_id"),
                                         limit=COST_PAGE_BUCKETS)
        now = deps.admin.server_time(deps.clock())
        if period_start(now) == asked:
            break
        asked = period_start(now)
    rows = [CostRow(b.start, b.end, r.amount_usd, r.project_id, r.api_key_id) for b in buckets for r in b.results]
    newest_end = max((b.end for b in buckets), default=None)
    return cost_report(rows, read_at=now, newest_bucket_end=newest_end)


@dataclass
class FanOut:
    """What one poll changed: objects written, Events to post (with the body to post them on), keys to wake."""

    written: int = 0
    post: Post | None = None
    events: list[tuple[Mapping[str, Any], list[Note]]] = field(default_factory=list)
    wake: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """Objects that could not be read or written this poll (``namespace/name``, why): the next poll tries again."""

    def announce(self, body: Mapping[str, Any], notes: list[Note]) -> None:
        self.events.append((body, notes))
        if self.post is not None:
            self.post(body, notes)


def _notes(alerts: Iterable[BudgetAlert]) -> list[Note]:
    return [Note("Warning", alert.reason, alert.message) for alert in alerts]


def _exceeded(status: KeyStatus | ProjectStatus) -> bool:
    condition = status.condition(ConditionType.BUDGET_EXCEEDED)
    return condition is not None and condition.status == "True"


def _record(deps: Deps, kind: str, namespace: str, name: str, spend: Spend | None, budget_usd: float | None,
            alerts: Iterable[BudgetAlert]) -> None:
    deps.metrics.set_spend(kind, namespace, name, spend.month_to_date_usd if spend else None,
                           spend.forecast_usd if spend else None, budget_usd)
    for alert in alerts:
        deps.metrics.record_budget_alert(kind, alert.threshold if alert.threshold is not None else "forecast")


async def apply_spend(deps: Deps, report: CostReport, projects: Iterable[ProjectSpendView],
                      keys: Iterable[KeySpendView], *, post: Post | None = None) -> FanOut:
    """Bring every given object's spend up to date with ``report``; write only what changed.

    One object that cannot be read or written (apiserver busy, a patch refused) is skipped and
    reported in :attr:`FanOut.failed`; it never stops the others, nor loses their alerts. With
    ``post``, each object's alerts are posted right after its status says they fired (the window in
    which a crash could lose one is a single object's, not the whole poll's).
    """
    out = FanOut(post=post)
    for project in projects:
        try:
            enforcement = await _limit_enforcement(deps, project)
            await _apply_project(deps, report, project, out, enforcement)
        except OperatorError as error:
            out.failed.append((project.name, error.message))
    for key in keys:
        try:
            await _apply_key(deps, report, key, out)
        except OperatorError as error:
            out.failed.append((f"{key.namespace}/{key.name}", error.message))
    return out


async def _limit_enforcement(deps: Deps, view: ProjectSpendView) -> str | None:
    """OpenAI's ``enforcing``/``inactive`` for a spend limit this operator set (one call per such project).

    It flips when spend passes the limit, so it is read with the costs rather than at the project's
    slower resync; the project pass stays the one that sets or removes the limit.
    """
    limit = view.status.spend_limit
    if limit is None or not limit.managed or view.status.project_id is None:
        return None
    try:
        current = await deps.admin.get_spend_limit(view.status.project_id)
    except OperatorError as error:  # the spend is still brought up to date; enforcement as last read
        log.warning("spend limit not read this poll", project=view.name, error=error.message)
        return None
    return current.enforcement_status if current is not None else None


def _with_enforcement(status: ProjectStatus, enforcement: str | None) -> ProjectStatus:
    limit = status.spend_limit
    if enforcement is None or limit is None or not limit.managed or limit.enforcement == enforcement:
        return status
    return replace(status, spend_limit=replace(limit, enforcement=enforcement))


def _project_fields(status: ProjectStatus) -> dict[str, object]:
    fields = spend_fields(status)
    fields["spendLimit"] = status.spend_limit.to_dict() if status.spend_limit else None
    return fields


_S = TypeVar("_S", ProjectStatus, KeyStatus)


@dataclass(frozen=True)
class _Target(Generic[_S]):
    """One object of either kind, and how the poll reads, assesses and writes it."""

    kind: str
    namespace: str | None
    name: str
    indexed: _S
    """The status the index holds (possibly a little old): assessed first, to skip unchanged objects."""
    budget: ProjectBudget | KeyBudget | None
    generation: int | None
    read_budget: Callable[[Mapping[str, Any]], tuple[ProjectBudget | KeyBudget | None, bool]]
    parse: Callable[[Mapping[str, Any] | None], _S]
    assess: Callable[[_S, Any, int | None], tuple[_S, tuple[BudgetAlert, ...]]]
    fields: Callable[[_S], dict[str, object]]
    read: Callable[[], Awaitable[dict[str, Any] | None]]
    patch: Callable[[dict[str, object]], Awaitable[None]]


async def _apply(deps: Deps, target: _Target[_S], out: FanOut) -> tuple[_S, _S] | None:
    """Assess one object; if its spend fields change, re-read it under its lock, assess again and patch.

    Returns (status before, status after) when the object was read fresh, ``None`` otherwise.
    """
    namespace = target.namespace or ""
    guess, _ = target.assess(target.indexed, target.budget, target.generation)
    if target.fields(guess) == target.fields(target.indexed):
        _record(deps, target.kind, namespace, target.name, guess.spend, _usd(target.budget), ())
        return None
    async with deps.lock(target.kind, target.namespace, target.name):
        body = await target.read()
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        budget, malformed = target.read_budget(body.get("spec") or {})
        if malformed:
            return None
        status = target.parse(body.get("status"))
        updated, alerts = target.assess(status, budget, body["metadata"].get("generation"))
        fields = target.fields(updated)
        if fields != target.fields(status):
            await target.patch(fields)
            out.written += 1
    _record(deps, target.kind, namespace, target.name, updated.spend, _usd(budget), alerts)
    if alerts:
        out.announce(body, _notes(alerts))
    return status, updated


async def _apply_project(deps: Deps, report: CostReport, view: ProjectSpendView, out: FanOut,
                         enforcement: str | None = None) -> None:
    def assess(status: ProjectStatus, budget: Any, generation: int | None) -> tuple[ProjectStatus,
                                                                                   tuple[BudgetAlert, ...]]:
        updated, alerts = assess_project(status, budget=budget, report=report, generation=generation)
        return _with_enforcement(updated, enforcement), alerts

    async def patch(fields: dict[str, object]) -> None:
        await deps.objects.patch_project_status(view.name, fields)

    await _apply(deps, _Target(
        "OpenAIProject", None, view.name, view.status, view.budget, view.generation,
        read_budget=lambda spec: _read_budget(spec, ProjectBudget), parse=ProjectStatus.from_dict, assess=assess,
        fields=_project_fields, read=lambda: deps.objects.get_project(view.name), patch=patch,
    ), out)


async def _apply_key(deps: Deps, report: CostReport, view: KeySpendView, out: FanOut) -> None:
    def assess(status: KeyStatus, budget: Any, generation: int | None) -> tuple[KeyStatus, tuple[BudgetAlert, ...]]:
        return assess_key(status, budget=budget, report=report, generation=generation)

    async def patch(fields: dict[str, object]) -> None:
        await deps.objects.patch_key_status(view.namespace, view.name, fields)

    changed = await _apply(deps, _Target(
        "OpenAIKey", view.namespace, view.name, view.status, view.budget, view.generation,
        read_budget=lambda spec: _read_budget(spec, KeyBudget), parse=KeyStatus.from_dict, assess=assess,
        fields=spend_fields, read=lambda: deps.objects.get_key(view.namespace, view.name), patch=patch,
    ), out)
    if changed is not None and _exceeded(changed[1]) != _exceeded(changed[0]):
        # The key's own loop acts on BudgetExceeded (a budget hold, or its end): wake it now.
        out.wake.append((view.namespace, view.name))
        log.info("key budget state changed", key=f"{view.namespace}/{view.name}", exceeded=_exceeded(changed[1]))


def _usd(budget: ProjectBudget | KeyBudget | None) -> float | None:
    return budget.monthly_usd if budget is not None else None


Post = Callable[[Mapping[str, Any], list[Note]], None]
"""Posts Events on an object (the handler layer's, which owns Kopf)."""
Nudge = Callable[[str, str], None]
"""Wakes one key's loop (namespace, name)."""


class SpendPoller:
    """The organisation's one costs poller: polls at most once per interval, however often it is ticked.

    After a failure it waits out its backoff, or the server's ``Retry-After`` when that is longer,
    and leaves every status as it was (the metrics show the staleness).
    """

    def __init__(self, deps: Deps, interval: timedelta, *, post: Post, nudge: Nudge,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._deps, self._interval, self._post, self._nudge = deps, interval, post, nudge
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._due = 0.0  # on the monotonic clock: poll at the first tick
        self._failures = 0
        self._newest_bucket: float | None = None
        self.identity_targets: Callable[[], Iterable[IdentitySpendView]] | None = None
        """Workload identities to bring up to date too (set by the handler; read only when polling)."""

    async def tick(self, targets: Callable[[], tuple[Iterable[ProjectSpendView], Iterable[KeySpendView]]]) -> None:
        """Poll if due (``targets`` gives the objects, read only then); otherwise return at once."""
        if self._lock.locked() or self._monotonic() < self._due:
            return
        async with self._lock:
            projects, keys = targets()
            await self._poll(list(projects), list(keys))

    async def _poll(self, projects: list[ProjectSpendView], keys: list[KeySpendView]) -> None:
        deps = self._deps
        started = self._monotonic()
        now = deps.clock()
        try:
            report = await read_costs(deps)
            fan_out = await apply_spend(deps, report, projects, keys, post=self._post)
            if self.identity_targets is not None:
                await apply_identity_spend(deps, report, self.identity_targets(), fan_out)
        except Exception as error:
            self._failures += 1
            backoff = min(retry_delay(self._failures, "spend-poll"), self._interval)
            delay = retry_after(error, backoff) if isinstance(error, OperatorError) else backoff
            self._due = self._monotonic() + delay.total_seconds()
            self._observe(started, now, ok=False)
            message = error.message if isinstance(error, OperatorError) else f"{type(error).__name__}: {error}"
            log.warning("costs poll failed; status.spend keeps the last values", error=message,
                        retry_in_seconds=round(delay.total_seconds(), 1), failures=self._failures)
            return
        self._failures = 0
        self._due = started + self._interval.total_seconds()
        if report.as_of is not None:
            self._newest_bucket = report.as_of.timestamp()
        self._observe(started, now, ok=True)
        for namespace, name in fan_out.wake:
            self._nudge(namespace, name)
        if fan_out.failed:
            log.warning("spend not updated for some objects; the next poll tries again", count=len(fan_out.failed),
                        objects=[ref for ref, _ in fan_out.failed[:10]], error=fan_out.failed[0][1])
        log.info("costs polled", projects=len(projects), keys=len(keys), written=fan_out.written,
                 alerts=sum(len(n) for _, n in fan_out.events),
                 as_of=report.as_of.isoformat() if report.as_of else None)

    def _observe(self, started: float, now: datetime, *, ok: bool) -> None:
        age = now.timestamp() - self._newest_bucket if self._newest_bucket is not None else None
        self._deps.metrics.observe_spend_poll(self._monotonic() - started, ok=ok, at=now.timestamp(),
                                              period_end=next_period_start(
                                                  self._deps.admin.server_time(now)).timestamp(),
                                              newest_bucket_age_seconds=age)
