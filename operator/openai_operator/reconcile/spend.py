"""Spend against budget: from the Costs API's daily buckets to each object's status, alerts and holds.

Pure: the poller (:mod:`openai_operator.operations.spend`) reads the buckets once per poll for the
whole organisation and hands them here as :class:`CostRow` values; :func:`cost_report` sums them by
project and by API key id, and :func:`assess` decides, for one object, the new ``status.spend``, the
alerts to announce and the ``BudgetExceeded`` condition. The key planner asks :func:`budget_hold`
whether a key must stay without a credential.

The numbers, and why they are what they are:

- **period**: the calendar month in UTC (OpenAI's spend limits are monthly, its buckets UTC days).
- **monthToDateUSD**: the sum of this period's buckets, rounded to the cent once. For a key it sums
  every credential the key held this period (current, superseded, revoked), so rotating does not
  reset it.
- **asOf**: the start of the newest bucket that holds any cost (costs arrive late and per day, so
  the status never claims to be real time).
- **forecastUSD**: ``monthToDateUSD / N * D``, where ``N`` is the number of days of the period the
  buckets cover so far (today's partial day counts as one) and ``D`` the days in the month. It only
  changes when the cost or the day does, so a poll that learns nothing new writes nothing.
- **alerts**: each threshold fires once per period, and the forecast passing the budget once;
  ``alertsFired``/``forecastAlertFired`` in status remember it across restarts and failovers, and a
  new period starts them afresh.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from openai_operator.model.conditions import ConditionType
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyBudget, KeySpec, OnBudgetExceeded, ProjectBudget
from openai_operator.model.status import KeyStatus, ProjectStatus, RetiredCredential, Spend

__all__ = [
    "MAX_RETIRED",
    "RETIRED_LAG",
    "Assessment",
    "BudgetAlert",
    "BudgetCondition",
    "CostReport",
    "CostRow",
    "assess",
    "assess_key",
    "assess_project",
    "budget_hold",
    "cost_report",
    "hold_ends",
    "key_ids",
    "next_period_start",
    "period_start",
    "retire",
    "spend_fields",
]

MAX_RETIRED = 32
"""Revoked credentials a key lists by id; the cost of older ones is folded into ``carriedUSD``."""
RETIRED_LAG = timedelta(days=2)
"""How long after its revocation a credential stays listed although no cost of this period is
known for it yet: cost data arrives up to a day late, so its last day may still come."""


_S = TypeVar("_S", KeyStatus, ProjectStatus)


def period_start(now: datetime) -> datetime:
    """First instant of the calendar month (UTC) that contains ``now``."""
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def next_period_start(now: datetime) -> datetime:
    """First instant of the next calendar month (UTC): when spend, alerts and budget holds reset."""
    start = period_start(now)
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def _days_in_period(start: datetime) -> int:
    return calendar.monthrange(start.year, start.month)[1]


@dataclass(frozen=True)
class CostRow:
    """One result of one daily bucket of ``GET /organization/costs`` (grouped by project and key)."""

    start: datetime
    end: datetime
    usd: float
    project_id: str | None = None
    api_key_id: str | None = None


@dataclass(frozen=True)
class CostReport:
    """This period's cost, summed once per poll for the whole organisation."""

    period_start: datetime
    read_at: datetime
    as_of: datetime | None
    """Start of the newest bucket that holds any cost (``None``: no cost at all this period)."""
    days_covered: int
    """Days of the period the buckets reach so far (a partial day counts as one)."""
    by_project: Mapping[str, float] = field(default_factory=dict)
    by_key: Mapping[str, float] = field(default_factory=dict)
    """Unrounded sums by API key id; round only the final total of an object."""


def cost_report(rows: Iterable[CostRow], *, read_at: datetime, newest_bucket_end: datetime | None = None) -> CostReport:
    """Sum ``rows`` of the period that contains ``read_at`` by project and by API key id.

    Rows of other periods are ignored (a poll near midnight on the 1st can still see last month's
    last bucket). ``newest_bucket_end`` is the end of the newest bucket the API returned, with or
    without cost in it; the days covered run to it (or to ``read_at``, whichever is earlier).
    """
    start = period_start(read_at)
    by_project: dict[str, float] = {}
    by_key: dict[str, float] = {}
    newest: datetime | None = None
    reach = newest_bucket_end
    for row in rows:
        if row.start < start or row.start >= next_period_start(start):
            continue
        reach = row.end if reach is None else max(reach, row.end)
        if row.usd == 0:
            continue
        newest = row.start if newest is None else max(newest, row.start)
        if row.project_id:
            by_project[row.project_id] = by_project.get(row.project_id, 0.0) + row.usd
        if row.api_key_id:
            by_key[row.api_key_id] = by_key.get(row.api_key_id, 0.0) + row.usd
    until = min(reach or read_at, read_at)
    days = max(1, math.ceil((until - start).total_seconds() / 86400))
    return CostReport(start, read_at, newest, min(days, _days_in_period(start)), by_project, by_key)


# --- one object's assessment ---------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetAlert:
    """An alert to announce once: an Event, a metric, and (through the condition) a status change."""

    reason: str
    """``BudgetThresholdCrossed`` or ``BudgetForecastExceeded``."""
    threshold: int | None
    """The percent crossed; ``None`` for the forecast alert."""
    message: str


@dataclass(frozen=True)
class BudgetCondition:
    """What ``BudgetExceeded`` should say."""

    exceeded: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Assessment:
    spend: Spend
    alerts_fired: tuple[int, ...]
    forecast_alert_fired: bool
    alerts: tuple[BudgetAlert, ...]
    condition: BudgetCondition


@dataclass(frozen=True)
class _Budget:
    monthly_usd: float
    thresholds: tuple[int, ...]


def _budget_of(budget: ProjectBudget | KeyBudget | None) -> _Budget | None:
    if budget is None:
        return None
    return _Budget(budget.monthly_usd, tuple(budget.alert_thresholds))


def _usd(value: float) -> float:
    return round(value + 0.0, 2)


def assess(
    report: CostReport,
    *,
    previous: Spend | None,
    alerts_fired: tuple[int, ...],
    forecast_alert_fired: bool,
    budget: ProjectBudget | KeyBudget | None,
    cost_usd: float,
    retired: tuple[RetiredCredential, ...] = (),
    carried_usd: float = 0.0,
    what: str = "spend",
) -> Assessment:
    """The new spend, alerts and condition of one object whose cost this period is ``cost_usd``.

    ``previous``/``alerts_fired``/``forecast_alert_fired`` are what its status says now; a status of
    an earlier period starts afresh (no alert has fired in this one yet).
    """
    same_period = previous is not None and previous.period_start == report.period_start
    if not same_period:
        alerts_fired, forecast_alert_fired = (), False
    terms = _budget_of(budget)
    total = _usd(cost_usd + carried_usd)
    forecast = _usd(total / report.days_covered * _days_in_period(report.period_start))
    percent = round(total / terms.monthly_usd * 100, 1) if terms is not None else None
    spend = Spend(
        month_to_date_usd=total, period_start=report.period_start, forecast_usd=forecast,
        percent_of_budget=percent, as_of=report.as_of, retired=retired, carried_usd=_usd(carried_usd),
        budget_usd=terms.monthly_usd if terms is not None else None,
    )
    raised = same_period and terms is not None and previous is not None and previous.budget_usd is not None \
        and terms.monthly_usd > previous.budget_usd
    if raised:
        # A raised budget re-arms the thresholds the spend no longer crosses (and the forecast alert).
        assert terms is not None
        alerts_fired = tuple(t for t in alerts_fired if total * 100 >= t * terms.monthly_usd)
        forecast_alert_fired = forecast_alert_fired and forecast >= terms.monthly_usd
    if terms is None:
        condition = BudgetCondition(False, Reason.NOT_CONFIGURED, "no budget is set (spec.budget)")
        return Assessment(spend, (), False, (), condition)

    budget_text = f"{terms.monthly_usd:.2f} USD"
    alerts: list[BudgetAlert] = []
    fired = set(alerts_fired)
    crossed = [t for t in terms.thresholds if total * 100 >= t * terms.monthly_usd]
    for threshold in crossed:
        if threshold not in fired:
            fired.add(threshold)
            alerts.append(BudgetAlert(
                Reason.BUDGET_THRESHOLD_CROSSED, threshold,
                f"{what} {total:.2f} USD is {percent} % of the monthly budget of {budget_text}: the "
                f"{threshold} % threshold is crossed (cost data as of {_day(report.as_of)})",
            ))
    if forecast >= terms.monthly_usd and total < terms.monthly_usd and not forecast_alert_fired:
        forecast_alert_fired = True
        alerts.append(BudgetAlert(
            Reason.BUDGET_FORECAST_EXCEEDED, None,
            f"{what} is forecast to reach {forecast:.2f} USD by the end of the month, past the monthly budget "
            f"of {budget_text} ({total:.2f} USD so far)",
        ))
    if total >= terms.monthly_usd:
        condition = BudgetCondition(True, Reason.BUDGET_EXCEEDED,
                                    f"{what} {total:.2f} USD reached the monthly budget of {budget_text}")
    elif crossed:
        condition = BudgetCondition(False, Reason.BUDGET_THRESHOLD_CROSSED,
                                    f"{what} {total:.2f} USD is {percent} % of the monthly budget of {budget_text} "
                                    f"(threshold {crossed[-1]} % crossed)")
    else:
        condition = BudgetCondition(False, Reason.WITHIN_BUDGET,
                                    f"{what} {total:.2f} USD is {percent} % of the monthly budget of {budget_text}")
    return Assessment(spend, tuple(sorted(fired)), forecast_alert_fired, tuple(alerts), condition)


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "none yet"


# --- keys: which credentials count, and the budget hold ------------------------------------------


def key_ids(status: KeyStatus) -> set[str]:
    """Every API key id whose cost counts toward the key this period (current, pending, superseded, revoked)."""
    ids = {p.key_id for p in status.previous if p.key_id}
    if status.key_id:
        ids.add(status.key_id)
    if status.pending is not None and status.pending.key_id:
        ids.add(status.pending.key_id)
    if status.spend is not None:
        ids.update(r.key_id for r in status.spend.retired)
    return ids


def key_cost(status: KeyStatus, report: CostReport) -> tuple[float, tuple[RetiredCredential, ...], float]:
    """The key's cost this period, the revoked credentials to keep listing, and the folded sum.

    A revoked credential stays listed while it has cost this period or was revoked less than
    :data:`RETIRED_LAG` ago; past :data:`MAX_RETIRED` the oldest are folded into ``carried``.
    """
    spend = status.spend
    same_period = spend is not None and spend.period_start == report.period_start
    carried = spend.carried_usd if spend is not None and same_period else 0.0
    retired = [
        r for r in (spend.retired if spend is not None else ())
        if report.by_key.get(r.key_id, 0.0) > 0 or r.revoked_at >= report.period_start - RETIRED_LAG
    ]
    retired.sort(key=lambda r: r.revoked_at)
    while len(retired) > MAX_RETIRED:
        carried += report.by_key.get(retired.pop(0).key_id, 0.0)
    live = key_ids(replace(status, spend=None))
    counted = live | {r.key_id for r in retired}
    cost = sum(report.by_key.get(key_id, 0.0) for key_id in counted)
    return cost, tuple(retired), carried


def retire(status: KeyStatus, key_id: str | None, at: datetime) -> KeyStatus:
    """Remember a revoked credential, so its cost this period keeps counting toward the key."""
    if key_id is None:
        return status
    spend = status.spend or Spend(month_to_date_usd=0.0)
    if any(r.key_id == key_id for r in spend.retired):
        return status
    return replace(status, spend=replace(spend, retired=(*spend.retired, RetiredCredential(key_id, at))))


def budget_hold(spec: KeySpec, status: KeyStatus, now: datetime) -> bool:
    """Whether the key must hold no credential: ``onExceeded: Revoke`` and its budget is spent this period.

    The poller decides "spent" (``BudgetExceeded=True``, against the budget it last assessed, in
    OpenAI's month); the hold ends when the poller sees otherwise (a raised budget, a new month on
    OpenAI's clock), when the period it was decided in is over by this clock (whichever comes
    first), and when the owner switches to ``Alert``.
    """
    if spec.budget is None or spec.budget.on_exceeded != OnBudgetExceeded.REVOKE:
        return False
    condition = status.condition(ConditionType.BUDGET_EXCEEDED)
    if condition is None or condition.status != "True":
        return False
    end = hold_ends(status)
    return end is not None and now < end


def hold_ends(status: KeyStatus) -> datetime | None:
    """When the period of the key's last assessed spend ends (a budget hold never outlives it)."""
    if status.spend is None or status.spend.period_start is None:
        return None
    return next_period_start(status.spend.period_start)


# --- whole statuses: what a poll writes -----------------------------------------------------------

_SPEND_FIELDS = ("spend", "alertsFired", "forecastAlertFired", "conditions")


def spend_fields(status: KeyStatus | ProjectStatus) -> dict[str, object]:
    """The part of a status the poller owns (and compares, so that an unchanged object is not written)."""
    patch = status.to_patch()
    return {name: patch[name] for name in _SPEND_FIELDS}


def _with_assessment(status: _S, assessment: Assessment | None, generation: int | None, now: datetime) -> _S:
    if assessment is None:
        return status
    updated = replace(status, spend=assessment.spend, alerts_fired=assessment.alerts_fired,
                      forecast_alert_fired=assessment.forecast_alert_fired)
    return updated.with_condition(ConditionType.BUDGET_EXCEEDED, assessment.condition.exceeded,
                                  assessment.condition.reason, assessment.condition.message, generation, now)


def _without_budget_condition(status: _S) -> _S:
    return replace(status, conditions=tuple(c for c in status.conditions if c.type != ConditionType.BUDGET_EXCEEDED))


def assess_project(
    status: ProjectStatus, *, budget: ProjectBudget | None, report: CostReport, generation: int | None,
) -> tuple[ProjectStatus, tuple[BudgetAlert, ...]]:
    """A project's status after this poll, and the alerts to announce."""
    if status.project_id is None:
        return status, ()
    assessment = assess(report, previous=status.spend, alerts_fired=status.alerts_fired,
                        forecast_alert_fired=status.forecast_alert_fired, budget=budget,
                        cost_usd=report.by_project.get(status.project_id, 0.0), what="project spend")
    updated = _with_assessment(status, assessment, generation, report.read_at)
    if budget is None:
        updated = _without_budget_condition(updated)
    return updated, assessment.alerts


def assess_key(
    status: KeyStatus, *, budget: KeyBudget | None, report: CostReport, generation: int | None,
) -> tuple[KeyStatus, tuple[BudgetAlert, ...]]:
    """A key's status after this poll (spend over all its credentials this period), and the alerts."""
    if not key_ids(status):
        return status, ()
    cost, retired, carried = key_cost(status, report)
    assessment = assess(report, previous=status.spend, alerts_fired=status.alerts_fired,
                        forecast_alert_fired=status.forecast_alert_fired, budget=budget, cost_usd=cost,
                        retired=retired, carried_usd=carried, what="key spend")
    updated = _with_assessment(status, assessment, generation, report.read_at)
    if budget is None:
        updated = _without_budget_condition(updated)
    return updated, assessment.alerts


def identity_spend(previous: Spend | None, service_account_id: str | None, report: CostReport) -> Spend | None:
    """A workload identity's spend this period: the costs OpenAI attributes to its service account.

    Access-token usage has no API key; the Costs API's ``api_key_id`` group is taken to carry the
    service account's id for it (the emulator's documented assumption), so the identity's cost is
    that one id's. There is no budget on an identity: its project's budget covers it.
    """
    if service_account_id is None:
        return None
    return assess(report, previous=previous, alerts_fired=(), forecast_alert_fired=False, budget=None,
                  cost_usd=report.by_key.get(service_account_id, 0.0), what="workload identity spend").spend
