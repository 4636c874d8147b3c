"""The OpenAIProject pass with a fake Admin API (no I/O): the budget mirror's executor, its
ownership rule, how a refusal is reported, and that a failure part-way keeps what was done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from openai_operator.config import OperatorConfig
from openai_operator.deps import Deps
from openai_operator.errors import OperatorError, PermanentError, TransientError
from openai_operator.metrics import OperatorMetrics
from openai_operator.model.status import ProjectStatus
from openai_operator.openai.models import Project, RateLimit, SpendAlert, SpendLimit
from openai_operator.operations.projects import ProjectRef, reconcile_project
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REF = ProjectRef("team-a", "uid-1", 1)
EMAILS = ["ops@example.com"]


@dataclass
class FakeAdmin:
    """Projects, one spend limit and spend alerts per project; ``fail[name]`` raises on that call
    (a list: one error per call, then success)."""

    projects: dict[str, Project] = field(default_factory=dict)
    limits: dict[str, SpendLimit] = field(default_factory=dict)
    alerts: dict[str, dict[str, SpendAlert]] = field(default_factory=dict)
    fail: dict[str, list[OperatorError]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail.get(name):
            raise self.fail[name].pop(0)

    async def get_project(self, project_id: str) -> Project:
        self._call("get_project")
        return self.projects[project_id]

    async def create_project(self, name: str) -> Project:
        self._call("create_project")
        project = Project(f"proj_{len(self.projects) + 1}", name, "active", NOW)
        self.projects[project.id] = project
        return project

    async def rename_project(self, project_id: str, name: str) -> Project:
        raise AssertionError("no rename expected")

    async def archive_project(self, project_id: str) -> Project:
        raise AssertionError("no archive expected")

    async def list_rate_limits(self, project_id: str, *, page_size: int = 100) -> list[RateLimit]:
        self._call("list_rate_limits")
        return [RateLimit("rl-gpt-4o", "gpt-4o", 10, 100)]

    async def modify_rate_limit(self, project_id: str, rate_limit_id: str, **_: Any) -> object:
        self._call("modify_rate_limit")
        return None

    async def get_spend_limit(self, project_id: str) -> SpendLimit | None:
        self._call("get_spend_limit")
        return self.limits.get(project_id)

    async def set_spend_limit(self, project_id: str, threshold_cents: int, *, currency: str = "USD",
                              interval: str = "month") -> SpendLimit:
        self._call("set_spend_limit")
        self.limits[project_id] = SpendLimit(threshold_cents, currency, interval, "inactive")
        return self.limits[project_id]

    async def delete_spend_limit(self, project_id: str) -> bool:
        self._call("delete_spend_limit")
        return self.limits.pop(project_id, None) is not None

    async def list_spend_alerts(self, project_id: str, *, page_size: int = 100) -> list[SpendAlert]:
        self._call("list_spend_alerts")
        return list(self.alerts.get(project_id, {}).values())

    async def create_spend_alert(self, project_id: str, threshold_cents: int, recipients: Sequence[str],
                                 **_: Any) -> SpendAlert:
        self._call("create_spend_alert")
        alerts = self.alerts.setdefault(project_id, {})
        alert = SpendAlert(f"alert_{len(alerts) + 1}", threshold_cents, "USD", "month", "email", tuple(recipients))
        alerts[alert.id] = alert
        return alert

    async def update_spend_alert(self, project_id: str, alert_id: str, threshold_cents: int,
                                 recipients: Sequence[str], **_: Any) -> SpendAlert:
        self._call("update_spend_alert")
        alert = SpendAlert(alert_id, threshold_cents, "USD", "month", "email", tuple(recipients))
        self.alerts[project_id][alert_id] = alert
        return alert

    async def delete_spend_alert(self, project_id: str, alert_id: str) -> bool:
        self._call("delete_spend_alert")
        return self.alerts.get(project_id, {}).pop(alert_id, None) is not None


@dataclass
class FakeObjects:
    """Status saves made during a pass (the handler saves the whole status after it), with the
    Admin API calls made before each."""

    admin: FakeAdmin
    saved: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    async def patch_project_status(self, name: str, status: dict[str, Any]) -> None:
        self.saved.append((len(self.admin.calls), status))


def deps_with(admin: FakeAdmin, objects: FakeObjects | None = None) -> Deps:
    config = OperatorConfig(admin_key=SecretValue("sk-admin-" + "a" * 40), fingerprint_key=b"k" * 32)
    return Deps(config=config, admin=admin, kube=None,  # type: ignore[arg-type]
                objects=objects or FakeObjects(admin), metrics=OperatorMetrics(), vault_client_factory=None,
                clock=lambda: NOW, instance_id="test1")


async def run(admin: FakeAdmin, spec: dict[str, Any], status: dict[str, Any] | None = None,
              objects: FakeObjects | None = None) -> Any:
    return await reconcile_project(deps_with(admin, objects), REF, spec_raw=spec, status_raw=status, keys=0)


def cond(outcome: Any, type: str) -> dict[str, Any]:
    return next(c for c in outcome.status["conditions"] if c["type"] == type)


def reasons(outcome: Any) -> list[str]:
    return [note.reason for note in outcome.notes]


HARD = {"budget": {"monthlyUSD": 500, "enforcement": "HardLimit"}}


async def test_hard_limit_is_set_in_cents_and_recorded_as_ours() -> None:
    admin = FakeAdmin()
    outcome = await run(admin, HARD)
    assert outcome.error is None
    assert admin.limits["proj_1"].threshold_cents == 50_000
    assert outcome.status["spendLimit"] == {"enforcement": "inactive", "monthlyUSD": 500.0, "managed": True}
    assert (cond(outcome, "BudgetSynced")["status"], cond(outcome, "BudgetSynced")["reason"]) == (
        "True", "BudgetMirrored")
    assert "SpendLimitSet" in reasons(outcome)
    again = await run(admin, HARD, outcome.status)
    assert admin.calls.count("set_spend_limit") == 1, "a limit that matches is not set again"
    assert "SpendLimitSet" not in reasons(again)


async def test_alert_removes_our_limit_but_not_a_hand_set_one() -> None:
    admin = FakeAdmin()
    first = await run(admin, HARD)
    alert_only = {"budget": {"monthlyUSD": 500, "enforcement": "Alert"}}
    removed = await run(admin, alert_only, first.status)
    assert "proj_1" not in admin.limits
    assert removed.status["spendLimit"] is None
    assert "SpendLimitRemoved" in reasons(removed)

    admin.limits["proj_1"] = SpendLimit(12_300, "USD", "month", "inactive")  # set in the dashboard
    kept = await run(admin, alert_only, removed.status)
    assert admin.limits["proj_1"].threshold_cents == 12_300
    assert kept.status["spendLimit"] == {"enforcement": "inactive", "monthlyUSD": 123.0, "managed": False}
    gone = await run(admin, {}, kept.status)
    assert admin.limits["proj_1"].threshold_cents == 12_300
    assert admin.calls.count("delete_spend_limit") == 1, "only the limit the operator set was deleted"
    assert cond(gone, "BudgetSynced")["reason"] == "NotConfigured"


async def test_a_limit_of_ours_changed_by_hand_is_released_not_deleted() -> None:
    admin = FakeAdmin()
    first = await run(admin, HARD)
    admin.limits["proj_1"] = SpendLimit(99_900, "USD", "month", "inactive")
    released = await run(admin, {}, first.status)
    assert admin.limits["proj_1"].threshold_cents == 99_900
    assert "delete_spend_limit" not in admin.calls
    assert "SpendLimitReleased" in reasons(released)


async def test_a_refused_mirror_is_reported_on_budget_synced_and_the_project_stays_ready() -> None:
    admin = FakeAdmin(fail={"set_spend_limit": [PermanentError("400 invalid threshold_amount")] * 2})
    first = await run(admin, HARD)
    assert first.error is None
    assert cond(first, "Ready")["status"] == "True"
    synced = cond(first, "BudgetSynced")
    assert (synced["status"], synced["reason"]) == ("False", "BudgetMirrorFailed")
    assert "threshold_amount" in synced["message"]
    assert reasons(first).count("BudgetMirrorFailed") == 1
    second = await run(admin, HARD, first.status)
    assert "BudgetMirrorFailed" not in reasons(second), "the refusal is announced once, not at every resync"
    healed = await run(admin, HARD, second.status)
    assert cond(healed, "BudgetSynced")["status"] == "True"
    assert "BudgetMirrored" in reasons(healed)


async def test_alert_emails_create_update_and_delete_only_ours() -> None:
    admin = FakeAdmin()
    admin.projects["proj_9"] = Project("proj_9", "team-a", "active", NOW)
    admin.alerts["proj_9"] = {"theirs": SpendAlert("theirs", 100, "USD", "month", "email", ("x@example.com",))}
    spec = {"projectId": "proj_9", "budget": {"monthlyUSD": 100, "alertEmails": EMAILS}}
    created = await run(admin, spec)
    ours = {r["id"]: r["thresholdPercent"] for r in created.status["spendAlerts"]}
    assert sorted(ours.values()) == [50, 80, 100]
    assert sorted(admin.alerts["proj_9"][i].threshold_cents for i in ours) == [5_000, 8_000, 10_000]

    spec["budget"] = {"monthlyUSD": 200, "alertEmails": ["new@example.com"], "alertThresholds": [50, 100]}
    updated = await run(admin, spec, created.status)
    after = {r["id"]: r["thresholdPercent"] for r in updated.status["spendAlerts"]}
    assert set(after) < set(ours), "alerts are updated in place, the spare one deleted"
    assert sorted(admin.alerts["proj_9"][i].threshold_cents for i in after) == [10_000, 20_000]
    assert all(admin.alerts["proj_9"][i].recipients == ("new@example.com",) for i in after)

    removed = await run(admin, {"projectId": "proj_9"}, updated.status)
    assert removed.status["spendAlerts"] == []
    assert list(admin.alerts["proj_9"]) == ["theirs"]


async def test_a_transient_failure_part_way_keeps_the_alerts_already_created() -> None:
    admin = FakeAdmin()
    spec = {"budget": {"monthlyUSD": 100, "alertEmails": EMAILS}}
    original = admin.create_spend_alert
    made = 0

    async def flaky(*args: Any, **kwargs: Any) -> SpendAlert:
        nonlocal made
        if made == 1:
            raise TransientError("503")
        made += 1
        return await original(*args, **kwargs)

    admin.create_spend_alert = flaky  # type: ignore[method-assign]
    failed = await run(admin, spec)
    assert isinstance(failed.error, TransientError)
    assert failed.status["projectId"] == "proj_1"
    assert [r["id"] for r in failed.status["spendAlerts"]] == ["alert_1"]
    admin.create_spend_alert = original  # type: ignore[method-assign]
    done = await run(admin, spec, failed.status)
    assert len(done.status["spendAlerts"]) == 3
    assert len(admin.alerts["proj_1"]) == 3, "the alert made before the failure is not made twice"


async def test_a_project_created_before_a_transient_failure_is_not_created_again() -> None:
    admin = FakeAdmin(fail={"list_rate_limits": [TransientError("503")]})
    spec = {"rateLimits": [{"model": "gpt-4o", "maxRequestsPerMinute": 5}]}
    failed = await run(admin, spec)
    assert isinstance(failed.error, TransientError)
    assert failed.status["projectId"] == "proj_1"
    await run(admin, spec, failed.status)
    assert admin.calls.count("create_project") == 1


async def test_no_budget_costs_no_spend_call() -> None:
    admin = FakeAdmin()
    outcome = await run(admin, {})
    assert not [c for c in admin.calls if "spend" in c]
    assert cond(outcome, "BudgetSynced")["reason"] == "NotConfigured"
    assert ProjectStatus.from_dict(outcome.status).spend_limit is None


async def test_each_created_alert_is_saved_before_the_next_call() -> None:
    """A crash after a create must not leave an alert nobody owns: its id reaches status at once."""
    admin = FakeAdmin()
    objects = FakeObjects(admin)
    await run(admin, {"budget": {"monthlyUSD": 100, "alertEmails": EMAILS}}, objects=objects)
    creates = [i + 1 for i, call in enumerate(admin.calls) if call == "create_spend_alert"]
    assert [calls for calls, _ in objects.saved] == creates
    assert [len(patch["spendAlerts"]) for _, patch in objects.saved] == [1, 2, 3]
