"""Pure planning: key policy, rate-limit and project plans, failure backoff (the key plan: test_key_plan.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openai_operator.errors import SpecError
from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyPolicy, parse_key_spec, parse_project_spec
from openai_operator.reconcile.policy import ProjectView, check_key_policy, grace_period_for
from openai_operator.reconcile.project_plan import ObservedRateLimit, plan_project, plan_rate_limits
from openai_operator.reconcile.schedule import failure_backoff

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def key_spec(**extra: Any) -> Any:
    return parse_key_spec({"projectRef": {"name": "team"}, "secret": {}, **extra}, name="chat")


def project(**policy: Any) -> ProjectView:
    spec = parse_project_spec({"keyPolicy": policy}, name="team")
    return ProjectView(name="team", project_id="proj_1", ready=True, key_policy=spec.key_policy)


def check(spec: Any = None, *, view: ProjectView | None = None, labels: dict[str, str] | None = None,
          others: int = 0, holds: bool = False, minimum: timedelta | None = None) -> str | None:
    refusal = check_key_policy(
        spec or key_spec(), namespace="apps", namespace_labels={} if labels is None else labels,
        project=view, other_keys_holding_credentials=others, holds_credential=holds,
        vault_prefix="openai/apps/", min_rotation_interval=minimum,
    )
    return refusal.reason if refusal else None


def open_project(**policy: Any) -> ProjectView:
    return project(allowedNamespaces={"names": ["apps"]}, **policy)


class TestKeyPolicy:
    @pytest.mark.parametrize(
        ("view", "labels", "expected"),
        [
            (None, {}, Reason.PROJECT_NOT_FOUND),
            (ProjectView("team", None, False, KeyPolicy()), {}, Reason.PROJECT_NOT_READY),
            (ProjectView("team", "proj_1", True, KeyPolicy(), deleting=True), {}, Reason.PROJECT_NOT_FOUND),
            (project(), {}, Reason.NAMESPACE_NOT_ALLOWED),
            (project(allowedNamespaces={"names": ["other"]}), {}, Reason.NAMESPACE_NOT_ALLOWED),
            (project(allowedNamespaces={"names": ["apps"]}), {}, None),
            (project(allowedNamespaces={"selector": {"matchLabels": {"team": "a"}}}), {"team": "b"},
             Reason.NAMESPACE_NOT_ALLOWED),
            (project(allowedNamespaces={"selector": {"matchLabels": {"team": "a"}}}), {"team": "a"}, None),
        ],
        ids=[
            "a missing project refuses",
            "a project that is not Ready refuses",
            "a project being deleted refuses",
            "nothing is allowed by default",
            "a namespace not in the names list is refused",
            "a namespace in the names list is allowed",
            "a namespace whose labels do not match the selector is refused",
            "a namespace whose labels match the selector is allowed",
        ],
    )
    def test_project_and_namespace_rules(self, view: ProjectView | None, labels: dict[str, str],
                                         expected: str | None) -> None:
        assert check(view=view, labels=labels) == expected

    def test_a_namespace_that_no_longer_exists_is_refused(self) -> None:
        view = project(allowedNamespaces={"names": ["apps"]})
        refusal = check_key_policy(key_spec(), namespace="apps", namespace_labels=None, project=view,
                                   other_keys_holding_credentials=0, holds_credential=False,
                                   vault_prefix="openai/apps/")
        assert refusal is not None
        assert refusal.reason == Reason.NAMESPACE_NOT_ALLOWED

    @pytest.mark.parametrize(
        ("others", "holds", "expected"),
        [(1, False, None), (2, False, Reason.KEY_QUOTA_EXCEEDED), (2, True, None)],
        ids=["room left is allowed", "a full project refuses a new key", "a key that already holds one keeps it"],
    )
    def test_max_keys(self, others: int, holds: bool, expected: str | None) -> None:
        view = project(allowedNamespaces={"names": ["apps"]}, maxKeys=2)
        assert check(view=view, others=others, holds=holds) == expected

    @pytest.mark.parametrize(
        ("rotation", "expected"),
        [(None, Reason.ROTATION_INTERVAL_TOO_LONG), ({"every": "48h"}, Reason.ROTATION_INTERVAL_TOO_LONG),
         ({"every": "24h"}, None), ({"schedule": "0 3 * * *"}, None),
         ({"schedule": "0 3 * * 1"}, Reason.ROTATION_INTERVAL_TOO_LONG),
         ({"schedule": "0 3 * * 1-5"}, Reason.ROTATION_INTERVAL_TOO_LONG),
         ({"schedule": "0 3 * * *", "timeZone": "America/New_York"}, Reason.ROTATION_INTERVAL_TOO_LONG),
         ({"schedule": "0 */12 * * *", "timeZone": "America/New_York"}, None)],
        ids=["no rotation breaks a maximum interval", "a longer interval is refused",
             "an interval at the maximum is allowed", "a daily cron schedule in UTC is allowed",
             "a weekly cron schedule is refused by a daily maximum",
             "a weekday schedule is refused for its weekend gap",
             "a daily schedule in New York is refused for its 25-hour autumn day",
             "a twice-daily schedule in New York stays under a day"],
    )
    def test_max_rotation_interval(self, rotation: dict[str, str] | None, expected: str | None) -> None:
        view = project(allowedNamespaces={"names": ["apps"]}, maxRotationInterval="24h")
        spec = key_spec(**({"rotation": {"gracePeriod": "1m", **rotation}} if rotation else {}))
        assert check(spec, view=view) == expected

    def test_a_schedule_refused_for_its_longest_gap_says_how_long_it_is(self) -> None:
        spec = key_spec(rotation={"schedule": "0 3 * * 1", "gracePeriod": "1m"})
        refusal = check_key_policy(spec, namespace="apps", namespace_labels={},
                                   project=open_project(maxRotationInterval="24h"),
                                   other_keys_holding_credentials=0, holds_credential=False,
                                   vault_prefix="openai/apps/")
        assert refusal is not None
        assert refusal.message.startswith("the longest gap of spec.rotation.schedule (168h) must be at most 24h")

    @pytest.mark.parametrize(
        ("rotation", "policy", "minimum", "expected"),
        [
            ({"every": "30m", "gracePeriod": "1m"}, {"minRotationInterval": "1h"}, None,
             Reason.ROTATION_INTERVAL_TOO_SHORT),
            ({"every": "1h", "gracePeriod": "1m"}, {"minRotationInterval": "1h"}, None, None),
            ({"schedule": "*/30 * * * *", "gracePeriod": "1m"}, {"minRotationInterval": "1h"}, None,
             Reason.ROTATION_INTERVAL_TOO_SHORT),
            ({"schedule": "0 9,17 * * *", "gracePeriod": "1m"}, {"minRotationInterval": "12h"}, None,
             Reason.ROTATION_INTERVAL_TOO_SHORT),
            ({"schedule": "0 3 * * *", "timeZone": "America/New_York", "gracePeriod": "1m"},
             {"minRotationInterval": "24h"}, None, Reason.ROTATION_INTERVAL_TOO_SHORT),
            ({"schedule": "0 3 * * *", "gracePeriod": "1m"}, {"minRotationInterval": "24h"}, None, None),
            ({"every": "30m", "gracePeriod": "1m"}, {}, timedelta(hours=1), Reason.ROTATION_INTERVAL_TOO_SHORT),
            ({"every": "2h", "gracePeriod": "1m"}, {"minRotationInterval": "1h"}, timedelta(hours=3),
             Reason.ROTATION_INTERVAL_TOO_SHORT),
            ({"every": "2h", "gracePeriod": "1m"}, {"minRotationInterval": "3h"}, timedelta(hours=1),
             Reason.ROTATION_INTERVAL_TOO_SHORT),
            ({"every": "2h", "gracePeriod": "1m"}, {"minRotationInterval": "1h"}, timedelta(hours=1), None),
            (None, {"minRotationInterval": "24h"}, timedelta(hours=1), None),
        ],
        ids=[
            "every below the project minimum is refused",
            "every at the project minimum is allowed",
            "a half-hourly schedule is refused by an hourly minimum",
            "a schedule is refused for its shortest gap, not its average",
            "a daily schedule in New York is refused by a 24h minimum for its 23-hour spring day",
            "a daily schedule in UTC meets a 24h minimum",
            "the operator's global minimum applies without a project minimum",
            "a global minimum stricter than the project's wins",
            "a project minimum stricter than the global one wins",
            "a rotation above both minimums is allowed",
            "a key without rotation is not refused by a minimum",
        ],
    )
    def test_min_rotation_interval(self, rotation: dict[str, str] | None, policy: dict[str, str],
                                   minimum: timedelta | None, expected: str | None) -> None:
        spec = key_spec(**({"rotation": rotation} if rotation else {}))
        assert check(spec, view=open_project(**policy), minimum=minimum) == expected

    def test_a_refusal_for_rotating_too_often_names_the_stricter_minimum(self) -> None:
        spec = key_spec(rotation={"every": "2h", "gracePeriod": "1m"})
        refusal = check_key_policy(spec, namespace="apps", namespace_labels={},
                                   project=open_project(minRotationInterval="1h"),
                                   other_keys_holding_credentials=0, holds_credential=False,
                                   vault_prefix="openai/apps/", min_rotation_interval=timedelta(hours=3))
        assert refusal is not None
        assert refusal.message == (
            "spec.rotation.every (2h) must be at least 3h for the operator's minimum rotation interval"
        )

    @pytest.mark.parametrize(
        ("rotation", "expected"),
        [({"every": "24h", "gracePeriod": "2h"}, Reason.GRACE_PERIOD_TOO_LONG),
         ({"every": "24h", "gracePeriod": "1h"}, None),
         ({"schedule": "0 3 * * *", "gracePeriod": "90m"}, Reason.GRACE_PERIOD_TOO_LONG),
         ({"every": "24h"}, None),
         (None, None)],
        ids=["a grace period above the project's maximum is refused",
             "a grace period at the maximum is allowed",
             "the maximum applies to scheduled rotations too",
             "the default one-hour grace meets a one-hour maximum",
             "a key without rotation is not refused for its grace period"],
    )
    def test_max_grace_period(self, rotation: dict[str, str] | None, expected: str | None) -> None:
        spec = key_spec(**({"rotation": rotation} if rotation else {}))
        assert check(spec, view=open_project(maxGracePeriod="1h")) == expected

    @pytest.mark.parametrize(
        "rotation",
        [{"schedule": "*/30 * * * *", "gracePeriod": "1h"},
         {"schedule": "30 1 * * *", "timeZone": "America/New_York", "gracePeriod": "23h30m"}],
        ids=["a grace longer than a half-hourly schedule's gap is an invalid spec",
             "a grace longer than the spring-forward day of a daily schedule is an invalid spec"],
    )
    def test_a_grace_not_shorter_than_the_shortest_gap_is_a_spec_error(self, rotation: dict[str, str]) -> None:
        with pytest.raises(SpecError) as caught:
            check(key_spec(rotation=rotation), view=open_project())
        assert caught.value.field_path == "spec.rotation.gracePeriod"

    def test_the_grace_check_comes_before_any_project_rule(self) -> None:
        """An invalid spec is reported as such even when the project is missing."""
        with pytest.raises(SpecError):
            check(key_spec(rotation={"schedule": "*/30 * * * *", "gracePeriod": "1h"}), view=None)

    @pytest.mark.parametrize(
        ("rotation", "policy", "expected"),
        [({"every": "24h", "gracePeriod": "5m"}, KeyPolicy(), timedelta(minutes=5)),
         ({"every": "24h", "gracePeriod": "5m"}, KeyPolicy(max_grace_period=timedelta(minutes=1)),
          timedelta(minutes=5)),
         (None, None, timedelta(hours=1)),
         (None, KeyPolicy(max_grace_period=timedelta(minutes=10)), timedelta(minutes=10)),
         (None, KeyPolicy(max_grace_period=timedelta(hours=3)), timedelta(hours=1))],
        ids=["a rotation's grace period is used", "a rotation's grace period is not silently capped (it is refused)",
             "a key without rotation gets the one-hour default",
             "the default is shortened to the project's maximum", "a longer maximum leaves the default alone"],
    )
    def test_grace_period_for(self, rotation: dict[str, str] | None, policy: KeyPolicy | None,
                              expected: timedelta) -> None:
        spec = key_spec(**({"rotation": rotation} if rotation else {}))
        assert grace_period_for(spec, policy) == expected

    @pytest.mark.parametrize(
        ("path", "expected"),
        [("openai/apps/chat", None), ("openai/other/chat", Reason.VAULT_PATH_NOT_ALLOWED),
         ("openai/apps", Reason.VAULT_PATH_NOT_ALLOWED)],
        ids=["a path under the namespace prefix is allowed", "another tenant's prefix is refused",
             "the prefix itself is refused"],
    )
    def test_vault_prefix(self, path: str, expected: str | None) -> None:
        view = project(allowedNamespaces={"names": ["apps"]})
        assert check(key_spec(vault={"path": path}), view=view) == expected


class TestProjectPlans:
    def test_rate_limits_change_only_what_differs(self) -> None:
        spec = parse_project_spec({"rateLimits": [
            {"model": "gpt-4o", "maxRequestsPerMinute": 100, "maxTokensPerMinute": 5000},
            {"model": "gpt-4o-mini", "maxRequestsPerMinute": 10},
            {"model": "no-such-model", "maxRequestsPerMinute": 1},
        ]}, name="team")
        observed = [
            ObservedRateLimit("rl_1", "gpt-4o", {"max_requests_per_1_minute": 100, "max_tokens_per_1_minute": 9000}),
            ObservedRateLimit("rl_2", "gpt-4o-mini", {"max_requests_per_1_minute": 10}),
        ]
        plan = plan_rate_limits(spec.rate_limits, observed)
        assert [(c.rate_limit_id, dict(c.values)) for c in plan.changes] == [
            ("rl_1", {"max_tokens_per_1_minute": 5000})]
        assert plan.unknown_models == ("no-such-model",)

    @pytest.mark.parametrize(
        ("spec", "recorded", "upstream", "expected"),
        [
            ({}, None, None, {"create": True}),
            ({"projectId": "proj_x"}, None, None, {"adopt_id": "proj_x"}),
            ({}, "proj_1", "team", {}),
            ({"name": "renamed"}, "proj_1", "team", {"rename_to": "renamed"}),
        ],
        ids=["nothing recorded creates", "a projectId adopts", "a matching project needs nothing",
             "a new spec.name renames"],
    )
    def test_plan_project(self, spec: dict[str, Any], recorded: str | None, upstream: str | None,
                          expected: dict[str, Any]) -> None:
        plan = plan_project(parse_project_spec(spec, name="team"), recorded, upstream)
        assert {k: v for k, v in vars(plan).items() if v} == expected


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempts", "seconds"), [(1, 2), (2, 4), (5, 32), (20, 600)],
        ids=["first failure waits the base", "doubles", "keeps doubling", "is capped"],
    )
    def test_exponential_and_capped(self, attempts: int, seconds: float) -> None:
        assert failure_backoff(attempts, jitter=0.999999).total_seconds() == pytest.approx(seconds, rel=1e-5)
        assert failure_backoff(attempts, jitter=0).total_seconds() == pytest.approx(seconds / 2)
