"""What an OpenAIProject needs next: create or adopt, rename, which rate limits to change, and how
``spec.budget`` is mirrored to OpenAI (the hard spend limit and the spend alerts).

Ownership upstream is decided here, from status: the operator changes or deletes only a spend
limit it set (``status.spendLimit.managed``) and only the spend alerts whose ids it recorded
(``status.spendAlerts``), so limits and alerts made in the dashboard are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openai_operator.model.specs import BudgetEnforcement, ProjectBudget, ProjectSpec, RateLimit, usd_to_cents
from openai_operator.model.status import SpendAlertRecord, SpendLimitStatus

RATE_LIMIT_FIELDS: Mapping[str, str] = {
    "max_requests_per_minute": "max_requests_per_1_minute",
    "max_tokens_per_minute": "max_tokens_per_1_minute",
    "max_requests_per_day": "max_requests_per_1_day",
    "max_images_per_minute": "max_images_per_1_minute",
    "max_audio_megabytes_per_minute": "max_audio_megabytes_per_1_minute",
    "batch_max_input_tokens_per_day": "batch_1_day_max_input_tokens",
}
"""Spec field (snake case of the CRD's camelCase) → OpenAI rate-limit field."""


@dataclass(frozen=True)
class ObservedRateLimit:
    id: str
    model: str
    values: Mapping[str, int | None]
    """By OpenAI field name."""


@dataclass(frozen=True)
class RateLimitChange:
    rate_limit_id: str
    model: str
    values: Mapping[str, int]
    """Only the OpenAI fields that differ from what the project has."""


@dataclass(frozen=True)
class RateLimitPlan:
    changes: tuple[RateLimitChange, ...]
    unknown_models: tuple[str, ...]
    """Models the spec names that the project has no rate-limit row for (OpenAI pre-populates one
    row per model the organisation can use; there is no create)."""


def plan_rate_limits(desired: Sequence[RateLimit], observed: Sequence[ObservedRateLimit]) -> RateLimitPlan:
    by_model = {row.model: row for row in observed}
    changes: list[RateLimitChange] = []
    unknown: list[str] = []
    for wanted in desired:
        row = by_model.get(wanted.model)
        if row is None:
            unknown.append(wanted.model)
            continue
        diff: dict[str, int] = {}
        for spec_field, api_field in RATE_LIMIT_FIELDS.items():
            value = getattr(wanted, spec_field)
            if value is not None and row.values.get(api_field) != value:
                diff[api_field] = value
        if diff:
            changes.append(RateLimitChange(row.id, row.model, diff))
    return RateLimitPlan(tuple(changes), tuple(unknown))


@dataclass(frozen=True)
class ProjectPlan:
    create: bool = False
    adopt_id: str | None = None
    rename_to: str | None = None


def plan_project(spec: ProjectSpec, recorded_id: str | None, upstream_name: str | None) -> ProjectPlan:
    """Create when nothing is recorded or adopted; adopt ``spec.projectId``; rename on a name change."""
    if spec.project_id is not None and recorded_id != spec.project_id:
        return ProjectPlan(adopt_id=spec.project_id)
    if recorded_id is None:
        return ProjectPlan(create=True)
    if upstream_name is not None and upstream_name != spec.name:
        return ProjectPlan(rename_to=spec.name)
    return ProjectPlan()


# --- spec.budget → OpenAI's hard spend limit ------------------------------------------------------


@dataclass(frozen=True)
class ObservedSpendLimit:
    """The project's spend limit as OpenAI answered (``None`` where it has none)."""

    threshold_cents: int
    enforcement: str | None = None


@dataclass(frozen=True)
class SpendLimitPlan:
    """What to do with the project's one hard spend limit."""

    set_cents: int | None = None
    """Create or replace the limit with this amount (``enforcement: HardLimit`` and it differs)."""
    delete: bool = False
    """Delete the limit: the operator set it, it still has the amount the operator set, and the
    spec no longer asks for it."""
    managed: bool = False
    """Whether the limit left after the plan is the operator's."""
    released: bool = False
    """The operator had set the limit, someone changed it since, and the spec no longer asks for
    it: it stays, and is no longer counted as the operator's."""


def wanted_limit_cents(budget: ProjectBudget | None) -> int | None:
    """The hard limit the spec asks for, in cents, or ``None`` when it asks for none."""
    if budget is None or budget.enforcement is not BudgetEnforcement.HARD_LIMIT:
        return None
    return budget.monthly_cents


def plan_spend_limit(
    budget: ProjectBudget | None, observed: ObservedSpendLimit | None, recorded: SpendLimitStatus | None
) -> SpendLimitPlan:
    """Mirror ``enforcement: HardLimit`` to OpenAI; remove only a limit the operator set.

    A limit the operator set is recognised by ``recorded.managed`` *and* its amount still being the
    one last read: one changed by hand since is someone else's decision, so it is released, not
    deleted. With HardLimit the spec wins over whatever limit exists (it is then the operator's).
    """
    wanted = wanted_limit_cents(budget)
    if wanted is not None:
        if observed is not None and observed.threshold_cents == wanted:
            return SpendLimitPlan(managed=True)
        return SpendLimitPlan(set_cents=wanted, managed=True)
    if observed is None or recorded is None or not recorded.managed:
        return SpendLimitPlan()
    if recorded.monthly_usd is not None and usd_to_cents(recorded.monthly_usd) == observed.threshold_cents:
        return SpendLimitPlan(delete=True)
    return SpendLimitPlan(released=True)


def needs_spend_limit_read(budget: ProjectBudget | None, recorded: SpendLimitStatus | None) -> bool:
    """Whether a pass reads the limit: when the spec has a budget, or a limit of ours may need removing.

    A project without a budget and without a limit of ours costs no call (and an account on an API
    version without spend limits sees no difference).
    """
    return budget is not None or (recorded is not None and recorded.managed)


# --- spec.budget.alertEmails → OpenAI's spend alerts ----------------------------------------------


@dataclass(frozen=True)
class ObservedSpendAlert:
    """One spend alert of the project as OpenAI lists it."""

    id: str
    threshold_cents: int
    recipients: tuple[str, ...]
    currency: str = "USD"
    interval: str = "month"
    channel_type: str = "email"


@dataclass(frozen=True)
class WantedAlert:
    """One alert ``spec.budget`` asks for: an email to ``recipients`` at ``threshold_percent`` of the budget."""

    threshold_percent: int
    threshold_cents: int
    recipients: tuple[str, ...]

    def matches(self, alert: ObservedSpendAlert) -> bool:
        """Whether ``alert`` already is this alert (recipients compared as a set: order means nothing)."""
        return (
            alert.threshold_cents == self.threshold_cents
            and sorted(alert.recipients) == sorted(self.recipients)
            and (alert.currency, alert.interval, alert.channel_type) == ("USD", "month", "email")
        )


@dataclass(frozen=True)
class SpendAlertPlan:
    """Changes to the operator's own spend alerts. Alerts it did not record are not in here at all."""

    owned: tuple[SpendAlertRecord, ...]
    """The recorded alerts that still exist upstream: what status records before anything is done
    (alerts deleted by hand are forgotten, and created again if still wanted)."""
    keep: tuple[SpendAlertRecord, ...] = ()
    update: tuple[tuple[str, WantedAlert], ...] = ()
    """(alert id, what it becomes): an owned alert changed in place, its id kept."""
    create: tuple[WantedAlert, ...] = ()
    delete: tuple[str, ...] = ()
    """Ids of owned alerts no longer wanted."""
    wanted: tuple[WantedAlert, ...] = ()

    @property
    def changes(self) -> bool:
        """Whether executing the plan calls the Admin API."""
        return bool(self.update or self.create or self.delete)


def wanted_alerts(budget: ProjectBudget | None) -> tuple[WantedAlert, ...]:
    """One alert per ``alertThresholds`` percent, at that share of the budget, when ``alertEmails`` is set."""
    if budget is None or not budget.alert_emails:
        return ()
    return tuple(
        WantedAlert(percent, usd_to_cents(budget.monthly_usd * percent / 100), tuple(budget.alert_emails))
        for percent in sorted(budget.alert_thresholds)
    )


def needs_spend_alert_listing(budget: ProjectBudget | None, recorded: Sequence[SpendAlertRecord]) -> bool:
    """Whether a pass lists the alerts: when some are wanted or some are recorded as ours."""
    return bool(wanted_alerts(budget)) or bool(recorded)


def plan_spend_alerts(
    budget: ProjectBudget | None, observed: Sequence[ObservedSpendAlert], recorded: Sequence[SpendAlertRecord]
) -> SpendAlertPlan:
    """Make the operator's alerts the wanted ones, changing as few as possible.

    An owned alert is paired with the wanted alert of its threshold; owned alerts left over are
    reused (updated in place, in threshold order) for wanted thresholds left over, so changing the
    thresholds or the budget keeps the alert ids; what remains is created or deleted.
    """
    upstream = {alert.id: alert for alert in observed}
    owned: dict[str, SpendAlertRecord] = {}
    for record in recorded:
        if record.id in upstream and record.id not in owned:
            owned[record.id] = record
    wanted = wanted_alerts(budget)
    pairs: list[tuple[str, WantedAlert]] = []
    spare = sorted(owned.values(), key=lambda r: (r.threshold_percent, r.id))
    unpaired: list[WantedAlert] = []
    for alert in wanted:
        same = next((r for r in spare if r.threshold_percent == alert.threshold_percent), None)
        if same is None:
            unpaired.append(alert)
        else:
            spare.remove(same)
            pairs.append((same.id, alert))
    reused = list(zip((r.id for r in spare), unpaired, strict=False))
    pairs += reused
    keep = tuple(SpendAlertRecord(alert_id, alert.threshold_percent) for alert_id, alert in pairs
                 if alert.matches(upstream[alert_id]))
    return SpendAlertPlan(
        owned=tuple(owned.values()),
        keep=keep,
        update=tuple((alert_id, alert) for alert_id, alert in pairs if not alert.matches(upstream[alert_id])),
        create=tuple(unpaired[len(reused):]),
        delete=tuple(r.id for r in spare[len(reused):]),
        wanted=wanted,
    )
