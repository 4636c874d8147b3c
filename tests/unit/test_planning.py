"""Pure planning: key policy, rate-limit and project plans, failure backoff (the key plan: test_key_plan.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openai_operator.model.reasons import Reason
from openai_operator.model.specs import KeyPolicy, parse_key_spec, parse_project_spec
from openai_operator.reconcile.policy import ProjectView, check_key_policy
from openai_operator.reconcile.project_plan import ObservedRateLimit, plan_project, plan_rate_limits
from openai_operator.reconcile.schedule import failure_backoff

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def key_spec(**extra: Any) -> Any:
    return parse_key_spec({"projectRef": {"name": "team"}, "secret": {}, **extra}, name="chat")


def project(**policy: Any) -> ProjectView:
    spec = parse_project_spec({"keyPolicy": policy}, name="team")
    return ProjectView(name="team", project_id="proj_1", ready=True, key_policy=spec.key_policy)


def check(spec: Any = None, *, view: ProjectView | None = None, labels: dict[str, str] | None = None,
          others: int = 0, holds: bool = False) -> str | None:
    refusal = check_key_policy(
        spec or key_spec(), namespace="apps", namespace_labels={} if labels is None else labels,
        project=view, other_keys_holding_credentials=others, holds_credential=holds,
        vault_prefix="openai/apps/",
    )
    return refusal.reason if refusal else None


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
         ({"every": "24h"}, None), ({"schedule": "0 3 * * *"}, None)],
        ids=["no rotation breaks a maximum interval", "a longer interval is refused",
             "an interval at the maximum is allowed", "a cron schedule is allowed"],
    )
    def test_max_rotation_interval(self, rotation: dict[str, str] | None, expected: str | None) -> None:
        view = project(allowedNamespaces={"names": ["apps"]}, maxRotationInterval="24h")
        spec = key_spec(**({"rotation": rotation} if rotation else {}))
        assert check(spec, view=view) == expected

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
