"""Table tests of the budget mirror's planners (no I/O): OpenAI's hard spend limit and spend alerts,
and the ownership rule (only what the operator set or recorded is ever changed or deleted)."""

from __future__ import annotations

from typing import Any

import pytest

from openai_operator.model.specs import ProjectBudget, parse_project_spec
from openai_operator.model.status import SpendAlertRecord, SpendLimitStatus
from openai_operator.reconcile.project_plan import (
    ObservedSpendAlert,
    ObservedSpendLimit,
    SpendLimitPlan,
    WantedAlert,
    needs_spend_alert_listing,
    needs_spend_limit_read,
    plan_spend_alerts,
    plan_spend_limit,
    wanted_alerts,
)

pytestmark = pytest.mark.unit

EMAILS = ["ops@example.com", "fin@example.com"]


def budget(**fields: Any) -> ProjectBudget | None:
    """``spec.budget`` parsed as the operator parses it (``None`` keyword: no budget at all)."""
    if fields.get("none"):
        return None
    spec = parse_project_spec({"budget": {"monthlyUSD": 100, **fields}}, name="p")
    assert spec.budget is not None
    return spec.budget


NO_BUDGET = budget(none=True)
HARD_100 = budget(enforcement="HardLimit")
ALERT_100 = budget(enforcement="Alert")
OURS_100 = SpendLimitStatus("inactive", 100.0, managed=True)
THEIRS_100 = SpendLimitStatus("inactive", 100.0, managed=False)


class TestSpendLimit:
    @pytest.mark.parametrize(
        ("spec_budget", "observed", "recorded", "expected"),
        [
            pytest.param(HARD_100, None, None, SpendLimitPlan(set_cents=10_000, managed=True),
                         id="HardLimit and no limit: set it in cents"),
            pytest.param(HARD_100, ObservedSpendLimit(10_000, "inactive"), OURS_100, SpendLimitPlan(managed=True),
                         id="HardLimit and the limit matches: nothing to do"),
            pytest.param(budget(monthlyUSD=250.5, enforcement="HardLimit"), ObservedSpendLimit(10_000), OURS_100,
                         SpendLimitPlan(set_cents=25_050, managed=True), id="a changed budget updates the limit"),
            pytest.param(HARD_100, ObservedSpendLimit(7_000), THEIRS_100,
                         SpendLimitPlan(set_cents=10_000, managed=True),
                         id="HardLimit takes over a hand-set limit: the spec wins"),
            pytest.param(budget(monthlyUSD=19.99, enforcement="HardLimit"), None, None,
                         SpendLimitPlan(set_cents=1_999, managed=True), id="dollars round to the nearest cent"),
            pytest.param(ALERT_100, ObservedSpendLimit(10_000), OURS_100, SpendLimitPlan(delete=True),
                         id="enforcement Alert deletes the limit the operator set"),
            pytest.param(NO_BUDGET, ObservedSpendLimit(10_000), OURS_100, SpendLimitPlan(delete=True),
                         id="removing spec.budget deletes the limit the operator set"),
            pytest.param(ALERT_100, ObservedSpendLimit(10_000), THEIRS_100, SpendLimitPlan(),
                         id="a hand-set limit is left alone"),
            pytest.param(NO_BUDGET, ObservedSpendLimit(10_000), None, SpendLimitPlan(),
                         id="a limit with no record is left alone"),
            pytest.param(ALERT_100, ObservedSpendLimit(12_345), OURS_100, SpendLimitPlan(released=True),
                         id="a limit of ours changed by hand since is released, not deleted"),
            pytest.param(ALERT_100, None, OURS_100, SpendLimitPlan(),
                         id="a limit of ours already gone: nothing to do"),
        ],
    )
    def test_plan_spend_limit(self, spec_budget: ProjectBudget | None, observed: ObservedSpendLimit | None,
                              recorded: SpendLimitStatus | None, expected: SpendLimitPlan) -> None:
        assert plan_spend_limit(spec_budget, observed, recorded) == expected

    @pytest.mark.parametrize(
        ("spec_budget", "recorded", "expected"),
        [
            pytest.param(NO_BUDGET, None, False, id="no budget and nothing of ours: no call"),
            pytest.param(NO_BUDGET, THEIRS_100, False, id="a hand-set limit seen before: still no call"),
            pytest.param(NO_BUDGET, OURS_100, True, id="a limit of ours may need removing"),
            pytest.param(ALERT_100, None, True, id="a budget shows OpenAI's limit in status"),
        ],
    )
    def test_when_the_limit_is_read(self, spec_budget: ProjectBudget | None, recorded: SpendLimitStatus | None,
                                    expected: bool) -> None:
        assert needs_spend_limit_read(spec_budget, recorded) is expected


def alert(alert_id: str, cents: int, recipients: list[str] | None = None, **extra: Any) -> ObservedSpendAlert:
    return ObservedSpendAlert(alert_id, cents, tuple(EMAILS if recipients is None else recipients), **extra)


WITH_EMAILS = budget(alertEmails=EMAILS)
THREE_OURS = [alert("a50", 5_000), alert("a80", 8_000), alert("a100", 10_000)]
THREE_RECORDS = [SpendAlertRecord("a50", 50), SpendAlertRecord("a80", 80), SpendAlertRecord("a100", 100)]


class TestSpendAlerts:
    def test_one_alert_per_threshold_in_cents_of_the_budget(self) -> None:
        assert wanted_alerts(budget(monthlyUSD=10.01, alertThresholds=[50, 150], alertEmails=EMAILS)) == (
            WantedAlert(50, 500, tuple(EMAILS)),
            WantedAlert(150, 1_502, tuple(EMAILS)),
        )

    @pytest.mark.parametrize(
        "spec_budget",
        [pytest.param(NO_BUDGET, id="no budget"), pytest.param(ALERT_100, id="a budget without alertEmails")],
    )
    def test_no_emails_want_no_alerts(self, spec_budget: ProjectBudget | None) -> None:
        assert wanted_alerts(spec_budget) == ()
        assert not needs_spend_alert_listing(spec_budget, [])

    def test_alerts_of_ours_are_listed_even_when_none_are_wanted(self) -> None:
        assert needs_spend_alert_listing(NO_BUDGET, [SpendAlertRecord("a50", 50)])

    def test_alert_emails_create_one_alert_per_threshold(self) -> None:
        plan = plan_spend_alerts(WITH_EMAILS, [alert("theirs", 5_000)], [])
        assert [w.threshold_percent for w in plan.create] == [50, 80, 100]
        assert (plan.update, plan.delete, plan.keep, plan.owned) == ((), (), (), ())

    def test_alerts_that_match_are_kept(self) -> None:
        plan = plan_spend_alerts(WITH_EMAILS, THREE_OURS, THREE_RECORDS)
        assert not plan.changes
        assert set(plan.keep) == set(THREE_RECORDS)

    def test_recipients_in_another_order_are_the_same_alert(self) -> None:
        reordered = [alert(a.id, a.threshold_cents, list(reversed(EMAILS))) for a in THREE_OURS]
        assert not plan_spend_alerts(WITH_EMAILS, reordered, THREE_RECORDS).changes

    def test_a_changed_budget_updates_every_alert_in_place(self) -> None:
        plan = plan_spend_alerts(budget(monthlyUSD=200, alertEmails=EMAILS), THREE_OURS, THREE_RECORDS)
        assert [(i, w.threshold_cents) for i, w in plan.update] == [("a50", 10_000), ("a80", 16_000),
                                                                      ("a100", 20_000)]
        assert (plan.create, plan.delete) == ((), ())

    def test_changed_emails_update_in_place(self) -> None:
        plan = plan_spend_alerts(budget(alertEmails=["new@example.com"]), THREE_OURS, THREE_RECORDS)
        assert {i for i, _ in plan.update} == {"a50", "a80", "a100"}
        assert all(w.recipients == ("new@example.com",) for _, w in plan.update)

    def test_changed_thresholds_reuse_spare_alerts_and_delete_the_rest(self) -> None:
        plan = plan_spend_alerts(budget(alertThresholds=[90], alertEmails=EMAILS), THREE_OURS, THREE_RECORDS)
        assert [(i, w.threshold_percent) for i, w in plan.update] == [("a50", 90)]
        assert plan.delete == ("a80", "a100")
        assert plan.create == ()

    def test_more_thresholds_create_the_missing_ones(self) -> None:
        plan = plan_spend_alerts(budget(alertThresholds=[50, 80, 100, 120], alertEmails=EMAILS), THREE_OURS,
                                 THREE_RECORDS)
        assert [w.threshold_percent for w in plan.create] == [120]
        assert (plan.update, plan.delete) == ((), ())

    @pytest.mark.parametrize(
        "spec_budget",
        [pytest.param(NO_BUDGET, id="spec.budget removed"), pytest.param(ALERT_100, id="alertEmails removed")],
    )
    def test_removal_deletes_only_ours(self, spec_budget: ProjectBudget | None) -> None:
        theirs = alert("theirs", 5_000)
        plan = plan_spend_alerts(spec_budget, [*THREE_OURS, theirs], THREE_RECORDS)
        assert set(plan.delete) == {"a50", "a80", "a100"}
        assert (plan.create, plan.update) == ((), ())

    def test_an_alert_not_recorded_is_never_touched_even_if_it_looks_like_ours(self) -> None:
        lookalike = alert("theirs", 8_000)
        plan = plan_spend_alerts(WITH_EMAILS, [THREE_OURS[0], lookalike, THREE_OURS[2]],
                                 [THREE_RECORDS[0], THREE_RECORDS[2]])
        assert [w.threshold_percent for w in plan.create] == [80]
        touched = {i for i, _ in plan.update} | set(plan.delete) | {r.id for r in plan.keep}
        assert "theirs" not in touched

    def test_an_alert_of_ours_deleted_by_hand_is_forgotten_and_made_again(self) -> None:
        plan = plan_spend_alerts(WITH_EMAILS, THREE_OURS[:2], THREE_RECORDS)
        assert {r.id for r in plan.owned} == {"a50", "a80"}
        assert [w.threshold_percent for w in plan.create] == [100]
        assert plan.delete == ()

    def test_an_alert_changed_upstream_is_put_back(self) -> None:
        changed = [THREE_OURS[0], alert("a80", 1), alert("a100", 10_000, interval="day")]
        plan = plan_spend_alerts(WITH_EMAILS, changed, THREE_RECORDS)
        assert [i for i, _ in plan.update] == ["a80", "a100"]

    def test_a_duplicated_record_is_one_alert(self) -> None:
        plan = plan_spend_alerts(WITH_EMAILS, THREE_OURS, [*THREE_RECORDS, SpendAlertRecord("a50", 80)])
        assert len(plan.owned) == 3
        assert not plan.changes
