"""Spend against budget, pure: cost sums, forecast, alerts once per period, key credentials that count,
and the budget hold the key planner obeys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from builders import NOW, issued, key_facts, key_spec, pending, previous
from openai_operator.model.conditions import Condition
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyBudget, ProjectBudget
from openai_operator.model.status import KeyStatus, ProjectStatus, RetiredCredential, Spend
from openai_operator.reconcile.actions import RemoveDestination, Revoke
from openai_operator.reconcile.key_plan import plan_key, revoked
from openai_operator.reconcile.spend import (
    MAX_RETIRED,
    CostReport,
    CostRow,
    assess,
    assess_key,
    assess_project,
    budget_hold,
    cost_report,
    key_cost,
    next_period_start,
    period_start,
    retire,
    spend_fields,
)

DEC = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def report(*, by_project: dict[str, float] | None = None, by_key: dict[str, float] | None = None,
           at: datetime = DEC + 9 * DAY + timedelta(hours=6), days: int = 10) -> CostReport:
    return CostReport(period_start(at), at, period_start(at) + (days - 1) * DAY, days, by_project or {},
                      by_key or {})


def budget(usd: float, *thresholds: int) -> ProjectBudget:
    return ProjectBudget.model_validate({"monthlyUSD": usd, "alertThresholds": list(thresholds or (50, 80, 100))})


class TestPeriods:
    @pytest.mark.parametrize(("now", "start", "end"), [
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), DEC, datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
    ])
    def test_the_period_is_the_calendar_month_in_utc(self, now: datetime, start: datetime, end: datetime) -> None:
        assert period_start(now) == start
        assert next_period_start(now) == end


class TestCostReport:
    def test_sums_by_project_and_key_and_ignores_other_months(self) -> None:
        rows = [
            CostRow(DEC - DAY, DEC, 5.0, "proj_a", "key_1"),  # November: not this period
            CostRow(DEC, DEC + DAY, 1.25, "proj_a", "key_1"),
            CostRow(DEC + DAY, DEC + 2 * DAY, 0.5, "proj_a", "key_2"),
            CostRow(DEC + DAY, DEC + 2 * DAY, 2.0, "proj_b", None),
            CostRow(DEC + 2 * DAY, DEC + 3 * DAY, 0.0, "proj_b", None),
        ]
        got = cost_report(rows, read_at=DEC + 2 * DAY + timedelta(hours=3), newest_bucket_end=DEC + 3 * DAY)
        assert got.by_project == {"proj_a": 1.75, "proj_b": 2.0}
        assert got.by_key == {"key_1": 1.25, "key_2": 0.5}
        assert got.as_of == DEC + DAY, "the newest bucket that holds any cost, not the poll time"
        assert got.days_covered == 3, "today's partial day counts as one"

    def test_no_cost_at_all(self) -> None:
        got = cost_report([], read_at=DEC + timedelta(hours=1))
        assert (got.as_of, got.days_covered, dict(got.by_project)) == (None, 1, {})


class TestAssess:
    def test_numbers_and_forecast(self) -> None:
        a = assess(report(days=10), previous=None, alerts_fired=(), forecast_alert_fired=False,
                   budget=budget(100), cost_usd=12.345)
        assert a.spend.month_to_date_usd == 12.35, "rounded to the cent once"
        assert a.spend.forecast_usd == pytest.approx(12.35 / 10 * 31, abs=0.01)
        assert a.spend.percent_of_budget == 12.3
        assert a.spend.period_start == DEC
        assert (a.alerts, a.condition.reason) == ((), Reason.WITHIN_BUDGET)

    def test_each_threshold_fires_once_per_period(self) -> None:
        first = assess(report(), previous=None, alerts_fired=(), forecast_alert_fired=False, budget=budget(10),
                       cost_usd=8.5)
        assert [a.threshold for a in first.alerts if a.reason == Reason.BUDGET_THRESHOLD_CROSSED] == [50, 80]
        assert first.alerts_fired == (50, 80)
        assert (first.condition.exceeded, first.condition.reason) == (False, Reason.BUDGET_THRESHOLD_CROSSED)
        again = assess(report(), previous=first.spend, alerts_fired=first.alerts_fired,
                       forecast_alert_fired=first.forecast_alert_fired, budget=budget(10), cost_usd=9.0)
        assert again.alerts == ()
        past = assess(report(), previous=again.spend, alerts_fired=again.alerts_fired,
                      forecast_alert_fired=again.forecast_alert_fired, budget=budget(10), cost_usd=10.0)
        assert [a.threshold for a in past.alerts] == [100]
        assert (past.condition.exceeded, past.condition.reason) == (True, Reason.BUDGET_EXCEEDED)

    def test_a_new_period_starts_the_alerts_afresh(self) -> None:
        november = Spend(9.0, period_start=datetime(2026, 11, 1, tzinfo=UTC))
        a = assess(report(), previous=november, alerts_fired=(50, 80), forecast_alert_fired=True,
                   budget=budget(10), cost_usd=5.0)
        assert [x.threshold for x in a.alerts if x.threshold] == [50]
        assert a.alerts_fired == (50,)

    def test_the_forecast_alert_fires_once_while_below_the_budget(self) -> None:
        a = assess(report(days=10), previous=None, alerts_fired=(), forecast_alert_fired=False,
                   budget=budget(10, 90), cost_usd=4.0)  # 4 USD in 10 days: about 12.40 by the 31st
        assert [x.reason for x in a.alerts] == [Reason.BUDGET_FORECAST_EXCEEDED]
        assert a.forecast_alert_fired
        b = assess(report(days=10), previous=a.spend, alerts_fired=a.alerts_fired, forecast_alert_fired=True,
                   budget=budget(10, 90), cost_usd=4.5)
        assert b.alerts == ()

    def test_without_a_budget_spend_is_shown_and_nothing_is_announced(self) -> None:
        a = assess(report(), previous=None, alerts_fired=(), forecast_alert_fired=False, budget=None, cost_usd=50)
        assert (a.spend.month_to_date_usd, a.spend.percent_of_budget, a.alerts) == (50.0, None, ())


class TestProjectAndKeyStatus:
    def test_a_poll_that_learns_nothing_changes_nothing(self) -> None:
        status = ProjectStatus(project_id="proj_a")
        once, alerts = assess_project(status, budget=budget(10), report=report(by_project={"proj_a": 6.0}),
                                      generation=1)
        assert [(a.reason, a.threshold) for a in alerts] == [(Reason.BUDGET_THRESHOLD_CROSSED, 50),
                                                              (Reason.BUDGET_FORECAST_EXCEEDED, None)]
        twice, again = assess_project(once, budget=budget(10), report=report(by_project={"proj_a": 6.0}),
                                      generation=1)
        assert spend_fields(twice) == spend_fields(once)
        assert again == ()

    def test_a_project_without_a_budget_has_no_budget_condition(self) -> None:
        status = ProjectStatus(project_id="proj_a", conditions=(
            Condition("BudgetExceeded", "True", "BudgetExceeded", "", NOW, 1),))
        after, _ = assess_project(status, budget=None, report=report(by_project={"proj_a": 1.0}), generation=1)
        assert after.condition("BudgetExceeded") is None
        assert after.spend is not None
        assert after.spend.month_to_date_usd == 1.0

    def test_a_key_counts_every_credential_of_the_period(self) -> None:
        status = issued(3, previous=(previous(2, NOW),))
        status = retire(status, "key_1", DEC + DAY)
        got, _ = assess_key(status, budget=None, report=report(by_key={"key_1": 1.0, "key_2": 2.0, "key_3": 0.5,
                                                                        "key_x": 99.0}), generation=1)
        assert got.spend is not None
        assert got.spend.month_to_date_usd == 3.5
        assert [r.key_id for r in got.spend.retired] == ["key_1"]

    def test_old_revoked_credentials_without_cost_this_period_are_dropped(self) -> None:
        old = RetiredCredential("key_old", DEC - 5 * DAY)
        recent = RetiredCredential("key_recent", DEC - timedelta(hours=2))
        with_cost = RetiredCredential("key_paid", DEC - 20 * DAY)
        status = issued(5, spend=Spend(3.0, period_start=datetime(2026, 11, 1, tzinfo=UTC),
                                       retired=(old, recent, with_cost)))
        cost, retired, carried = key_cost(status, report(by_key={"key_paid": 1.0}))
        assert {r.key_id for r in retired} == {"key_recent", "key_paid"}
        assert (cost, carried) == (1.0, 0.0)

    def test_past_the_list_limit_the_oldest_are_folded_into_carried(self) -> None:
        retired = tuple(RetiredCredential(f"key_{i}", DEC + timedelta(minutes=i)) for i in range(MAX_RETIRED + 2))
        status = issued(99, key_id="key_now", spend=Spend(0.0, period_start=DEC, retired=retired))
        cost, kept, carried = key_cost(status, report(by_key={f"key_{i}": 1.0 for i in range(MAX_RETIRED + 2)}))
        assert len(kept) == MAX_RETIRED
        assert kept[0].key_id == "key_2"
        assert (carried, cost) == (2.0, MAX_RETIRED)

    def test_a_revoked_credential_is_retired_once(self) -> None:
        status = revoked(issued(2, previous=(previous(1, NOW),)), Revoke("sa_1", "previous", key_id="key_1"), NOW)
        again = retire(status, "key_1", NOW + DAY)
        assert status.spend is not None
        assert [r.key_id for r in status.spend.retired] == ["key_1"]
        assert again == status


# --- the budget hold in the key planner ----------------------------------------------------------

REVOKE_BUDGET = {"budget": {"monthlyUSD": 5, "onExceeded": "Revoke"}}


def exceeded(status: KeyStatus, *, at: datetime = NOW) -> KeyStatus:
    return replace(status, spend=Spend(5.2, period_start=period_start(at)), conditions=(
        *status.conditions, Condition("BudgetExceeded", "True", "BudgetExceeded", "key spend 5.20 USD", at, 1)))


class TestBudgetHold:
    def test_only_revoke_with_the_budget_exceeded_in_the_current_period_holds(self) -> None:
        assert budget_hold(key_spec(**REVOKE_BUDGET), exceeded(issued()), NOW)
        assert not budget_hold(key_spec(budget={"monthlyUSD": 5}), exceeded(issued()), NOW), "Alert only reports"
        assert not budget_hold(key_spec(**REVOKE_BUDGET), issued(), NOW)
        assert not budget_hold(key_spec(**REVOKE_BUDGET), exceeded(issued()), next_period_start(NOW))

    def test_the_key_is_taken_out_of_every_destination_before_anything_is_revoked(self) -> None:
        status = exceeded(issued(3, previous=(previous(2, NOW + timedelta(hours=1)),), pending=pending(4)))
        plan = plan_key(key_facts(status, spec=key_spec(**REVOKE_BUDGET)))
        kinds = [type(a).__name__ for a in plan.actions]
        assert kinds[0] == "RemoveDestination", "no dead key is ever left in a destination"
        revoked_ids = {a.service_account_id for a in plan.actions if isinstance(a, Revoke)}
        assert revoked_ids == {"sa_2", "sa_3", "sa_4"}, "current, superseded and unfinished: nothing can spend"
        assert isinstance(plan.actions[0], RemoveDestination)
        ready = plan.status.condition("Ready")
        assert ready is not None
        assert (ready.status, ready.reason) == ("False", Reason.BUDGET_EXCEEDED)
        assert plan.requeue_after == next_period_start(NOW) - NOW
        assert [n.reason for n in plan.notes] == [Reason.BUDGET_EXCEEDED]

    def test_a_held_key_issues_nothing_and_the_next_period_issues_a_fresh_one(self) -> None:
        empty = exceeded(KeyStatus(revision=3, spend=None))
        plan = plan_key(key_facts(empty, spec=key_spec(**REVOKE_BUDGET), destinations={}))
        assert plan.actions == ()
        assert plan.notes == ()
        later = replace(key_facts(empty, spec=key_spec(**REVOKE_BUDGET), destinations={}),
                        now=next_period_start(NOW) + timedelta(seconds=1))
        issue = plan_key(later)
        assert issue.issue is not None
        assert any(type(a).__name__ == "Mint" for a in issue.actions)

    def test_switching_to_alert_lifts_the_hold(self) -> None:
        plan = plan_key(key_facts(exceeded(KeyStatus(revision=1)), spec=key_spec(budget={"monthlyUSD": 5}),
                                  destinations={}))
        assert any(type(a).__name__ == "Mint" for a in plan.actions)


def test_key_budget_defaults() -> None:
    assert KeyBudget.model_validate({"monthlyUSD": 1}).alert_thresholds == (50, 80, 100)


def test_a_raised_budget_re_arms_the_thresholds_above_the_spend() -> None:
    first = assess(report(), previous=None, alerts_fired=(), forecast_alert_fired=False, budget=budget(10),
                   cost_usd=10.0)
    assert first.alerts_fired == (50, 80, 100)
    raised = assess(report(), previous=first.spend, alerts_fired=first.alerts_fired,
                    forecast_alert_fired=first.forecast_alert_fired, budget=budget(20), cost_usd=10.0)
    assert raised.alerts_fired == (50,), "80 % and 100 % of the new budget are not crossed yet"
    later = assess(report(), previous=raised.spend, alerts_fired=raised.alerts_fired,
                   forecast_alert_fired=raised.forecast_alert_fired, budget=budget(20), cost_usd=16.5)
    assert [a.threshold for a in later.alerts if a.threshold] == [80]
