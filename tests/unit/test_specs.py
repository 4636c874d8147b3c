"""Spec parsing: defaults the schema cannot express, and errors that name the field path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from openai_operator.errors import PermanentError, SpecError
from openai_operator.model.durations import format_duration, parse_duration
from openai_operator.model.specs import (
    BudgetEnforcement,
    KeyDeletionPolicy,
    OnBudgetExceeded,
    ProjectDeletionPolicy,
    RestartKind,
    parse_key_spec,
    parse_project_spec,
    vault_path_within,
)

pytestmark = pytest.mark.unit


def key_spec(**fields: Any) -> dict[str, Any]:
    return {"projectRef": {"name": "team-a"}, "secret": {}, **fields}


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("720h", timedelta(hours=720), id="hours"),
            pytest.param("90m", timedelta(minutes=90), id="minutes"),
            pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours and minutes combined"),
            pytest.param("1h30m15s", timedelta(hours=1, minutes=30, seconds=15), id="three units combined"),
            pytest.param("500ms", timedelta(milliseconds=500), id="milliseconds are not minutes"),
            pytest.param("1m500ms", timedelta(minutes=1, milliseconds=500), id="minutes then milliseconds"),
            pytest.param("1.5h", timedelta(minutes=90), id="a decimal fraction"),
            pytest.param("0s", timedelta(0), id="zero"),
        ],
    )
    def test_go_durations_parse(self, text: str, expected: timedelta) -> None:
        assert parse_duration(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("30d", id="days are not a Go unit"),
            pytest.param("1h 30m", id="spaces are not allowed"),
            pytest.param("-1h", id="negative durations are refused"),
            pytest.param("h", id="a unit without a number"),
            pytest.param("15", id="a number without a unit"),
            pytest.param("", id="the empty string"),
            pytest.param("1H", id="units are lower case"),
        ],
    )
    def test_non_durations_are_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(text)

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            pytest.param(timedelta(hours=720), "720h", id="whole hours"),
            pytest.param(timedelta(minutes=90), "1h30m", id="hours and minutes"),
            pytest.param(timedelta(seconds=45, milliseconds=5), "45s5ms", id="seconds and milliseconds"),
            pytest.param(timedelta(0), "0s", id="zero"),
        ],
    )
    def test_durations_format_the_way_users_write_them(self, value: timedelta, text: str) -> None:
        assert format_duration(value) == text
        assert parse_duration(text) == value


class TestProjectSpec:
    def test_an_empty_spec_creates_a_project_named_after_the_object(self) -> None:
        spec = parse_project_spec({}, name="team-a")
        assert spec.name == "team-a"
        assert spec.project_id is None
        assert not spec.adopted
        assert spec.deletion_policy is ProjectDeletionPolicy.ARCHIVE
        assert spec.budget is None
        assert spec.rate_limits == ()

    def test_a_missing_spec_is_an_empty_spec(self) -> None:
        assert parse_project_spec(None, name="team-a") == parse_project_spec({}, name="team-a")

    @pytest.mark.parametrize(
        ("spec", "policy"),
        [
            pytest.param({}, ProjectDeletionPolicy.ARCHIVE, id="created projects are archived by default"),
            pytest.param({"projectId": "proj_1"}, ProjectDeletionPolicy.RETAIN, id="adopted projects are retained"),
            pytest.param(
                {"projectId": "proj_1", "deletionPolicy": "Archive"},
                ProjectDeletionPolicy.ARCHIVE,
                id="an explicit policy wins over the adoption default",
            ),
            pytest.param(
                {"deletionPolicy": "Retain"}, ProjectDeletionPolicy.RETAIN, id="created projects may be retained"
            ),
        ],
    )
    def test_deletion_policy_defaults_depend_on_adoption(
        self, spec: dict[str, Any], policy: ProjectDeletionPolicy
    ) -> None:
        assert parse_project_spec(spec, name="p").deletion_policy is policy

    def test_a_full_spec_is_parsed_into_types(self) -> None:
        spec = parse_project_spec(
            {
                "name": "Team A",
                "projectId": "proj_abc",
                "budget": {"monthlyUSD": 100, "enforcement": "HardLimit", "alertEmails": ["a@example.com"]},
                "rateLimits": [{"model": "gpt-4o-mini", "maxRequestsPerMinute": 60, "batchMaxInputTokensPerDay": 9}],
                "keyPolicy": {
                    "allowedNamespaces": {"names": ["team-a"]},
                    "maxKeys": 3,
                    "maxRotationInterval": "2160h",
                },
            },
            name="ignored",
        )
        assert spec.name == "Team A"
        assert spec.adopted
        assert spec.budget is not None
        assert spec.budget.monthly_usd == 100
        assert spec.budget.alert_thresholds == (50, 80, 100)
        assert spec.budget.enforcement is BudgetEnforcement.HARD_LIMIT
        assert spec.budget.alert_emails == ("a@example.com",)
        (limit,) = spec.rate_limits
        assert (limit.model, limit.max_requests_per_minute, limit.batch_max_input_tokens_per_day) == (
            "gpt-4o-mini",
            60,
            9,
        )
        assert limit.max_tokens_per_minute is None
        assert spec.key_policy.max_keys == 3
        assert spec.key_policy.max_rotation_interval == timedelta(days=90)
        assert spec.key_policy.allows_namespace("team-a", {})

    def test_specs_are_frozen(self) -> None:
        spec = parse_project_spec({}, name="p")
        with pytest.raises(ValueError, match="frozen"):
            spec.name = "other"

    @pytest.mark.parametrize(
        ("spec", "path"),
        [
            pytest.param({"projectId": "abc"}, "spec.projectId", id="a project id must start with proj_"),
            pytest.param({"name": ""}, "spec.name", id="the OpenAI-side name may not be empty"),
            pytest.param({"deletionPolicy": "Revoke"}, "spec.deletionPolicy", id="Revoke is a key policy"),
            pytest.param({"budget": {}}, "spec.budget.monthlyUSD", id="a budget needs an amount"),
            pytest.param({"budget": {"monthlyUSD": 0}}, "spec.budget.monthlyUSD", id="a budget must be positive"),
            pytest.param(
                {"budget": {"monthlyUSD": 1, "alertThresholds": [80, 50]}},
                "spec.budget.alertThresholds",
                id="thresholds must be ascending",
            ),
            pytest.param(
                {"budget": {"monthlyUSD": 1, "alertThresholds": [50, 50]}},
                "spec.budget.alertThresholds",
                id="thresholds must be unique",
            ),
            pytest.param(
                {"budget": {"monthlyUSD": 1, "alertThresholds": [0]}},
                "spec.budget.alertThresholds[0]",
                id="a threshold of zero percent is refused",
            ),
            pytest.param(
                {"budget": {"monthlyUSD": 1, "enforcement": "Block"}},
                "spec.budget.enforcement",
                id="enforcement is Alert or HardLimit",
            ),
            pytest.param(
                {"budget": {"monthlyUSD": 1, "alertEmails": ["nobody"]}},
                "spec.budget.alertEmails[0]",
                id="alert emails must look like addresses",
            ),
            pytest.param(
                {"rateLimits": [{"model": "gpt-4o"}]}, "spec.rateLimits[0]", id="a rate limit must limit something"
            ),
            pytest.param(
                {"rateLimits": [{"model": "gpt 4o", "maxRequestsPerMinute": 1}]},
                "spec.rateLimits[0].model",
                id="model names have no spaces",
            ),
            pytest.param(
                {"rateLimits": [{"model": "gpt-4o", "maxTokensPerMinute": 0}]},
                "spec.rateLimits[0].maxTokensPerMinute",
                id="limits are at least one",
            ),
            pytest.param(
                {
                    "rateLimits": [
                        {"model": "gpt-4o", "maxTokensPerMinute": 1},
                        {"model": "gpt-4o", "maxRequestsPerMinute": 1},
                    ]
                },
                "spec.rateLimits",
                id="each model has one rate limit entry",
            ),
            pytest.param({"keyPolicy": {"maxKeys": 0}}, "spec.keyPolicy.maxKeys", id="a key quota is at least one"),
            pytest.param(
                {"keyPolicy": {"maxRotationInterval": "90d"}},
                "spec.keyPolicy.maxRotationInterval",
                id="the maximum rotation interval is a Go duration",
            ),
            pytest.param(
                {"keyPolicy": {"allowedNamespaces": {"names": ["Team_A"]}}},
                "spec.keyPolicy.allowedNamespaces.names",
                id="allowed namespaces are DNS labels",
            ),
            pytest.param(
                {
                    "keyPolicy": {
                        "allowedNamespaces": {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}
                    }
                },
                "spec.keyPolicy.allowedNamespaces.selector.matchExpressions[0]",
                id="In needs values",
            ),
        ],
    )
    def test_invalid_project_specs_name_the_field(self, spec: dict[str, Any], path: str) -> None:
        with pytest.raises(SpecError) as caught:
            parse_project_spec(spec, name="p")
        assert caught.value.field_path.startswith(path), caught.value
        assert str(caught.value).startswith(caught.value.field_path)

    def test_a_spec_that_is_not_an_object_is_refused(self) -> None:
        with pytest.raises(SpecError) as caught:
            parse_project_spec(["budget"], name="p")  # type: ignore[arg-type]
        assert caught.value.field_path == "spec"


class TestKeySpec:
    def test_a_minimal_key_gets_every_default(self) -> None:
        spec = parse_key_spec({"projectRef": {"name": "team-a"}, "secret": {}}, name="chat")
        assert spec.project_ref.name == "team-a"
        assert spec.scopes == ()
        assert spec.secret is not None
        assert spec.secret.name == "chat"
        assert (spec.secret.keys.api_key, spec.secret.keys.project_id, spec.secret.keys.base_url) == (
            "OPENAI_API_KEY",
            "OPENAI_PROJECT_ID",
            "OPENAI_BASE_URL",
        )
        assert spec.vault is None
        assert spec.rotation is None
        assert spec.budget is None
        assert spec.deletion_policy is KeyDeletionPolicy.REVOKE

    def test_a_full_key_is_parsed_into_types(self) -> None:
        spec = parse_key_spec(
            {
                "projectRef": {"name": "team-a"},
                "scopes": ["api.all.read"],
                "secret": {
                    "name": "openai",
                    "keys": {"apiKey": "KEY", "projectId": "PROJECT", "baseURL": "BASE"},
                    "labels": {"app": "chat"},
                    "annotations": {"note": "x"},
                },
                "vault": {"path": "openai/team-a/chat"},
                "rotation": {
                    "schedule": "0 3 * * 1",
                    "timeZone": "Europe/Berlin",
                    "gracePeriod": "15m",
                    "restartTargets": [{"kind": "StatefulSet", "name": "db"}],
                },
                "budget": {"monthlyUSD": 5.5, "onExceeded": "Revoke"},
                "deletionPolicy": "Retain",
            },
            name="chat",
        )
        assert spec.scopes == ("api.all.read",)
        assert spec.secret is not None
        assert spec.secret.name == "openai"
        assert spec.secret.keys.base_url == "BASE"
        assert spec.secret.labels == {"app": "chat"}
        assert spec.vault is not None
        assert (spec.vault.mount, spec.vault.path, spec.vault.field) == ("secret", "openai/team-a/chat", "api_key")
        rotation = spec.rotation
        assert rotation is not None
        assert (rotation.every, rotation.schedule, rotation.time_zone) == (None, "0 3 * * 1", "Europe/Berlin")
        assert rotation.grace_period == timedelta(minutes=15)
        assert [(t.kind, t.name) for t in rotation.restart_targets] == [(RestartKind.STATEFUL_SET, "db")]
        assert spec.budget is not None
        assert spec.budget.on_exceeded is OnBudgetExceeded.REVOKE
        assert spec.deletion_policy is KeyDeletionPolicy.RETAIN

    def test_a_vault_only_key_has_no_secret(self) -> None:
        spec = parse_key_spec({"projectRef": {"name": "p"}, "vault": {"path": "openai/ns/k"}}, name="k")
        assert spec.secret is None

    def test_rotation_every_is_a_timedelta_with_a_one_hour_grace_by_default(self) -> None:
        spec = parse_key_spec(key_spec(rotation={"every": "720h"}), name="k")
        assert spec.rotation is not None
        assert spec.rotation.every == timedelta(days=30)
        assert spec.rotation.grace_period == timedelta(hours=1)

    @pytest.mark.parametrize(
        ("spec", "path"),
        [
            pytest.param({"projectRef": {"name": "p"}}, "spec.secret", id="a key needs a destination"),
            pytest.param({"secret": {}}, "spec.projectRef", id="a key needs a project"),
            pytest.param(key_spec(projectRef={"name": "P"}), "spec.projectRef.name", id="project names are DNS names"),
            pytest.param(key_spec(scopes=["API"]), "spec.scopes[0]", id="scopes are lower case"),
            pytest.param(key_spec(scopes=["a", "a"]), "spec.scopes", id="scopes are unique"),
            pytest.param(
                key_spec(rotation={"every": "720h", "schedule": "0 3 * * *"}),
                "spec.rotation.every",
                id="every and schedule together are refused",
            ),
            pytest.param(key_spec(rotation={}), "spec.rotation.every", id="rotation needs every or schedule"),
            pytest.param(key_spec(rotation={"every": "30d"}), "spec.rotation.every", id="days are not a duration"),
            pytest.param(key_spec(rotation={"every": "5s"}), "spec.rotation.every", id="rotation every 5s is too fast"),
            pytest.param(
                key_spec(rotation={"schedule": "0 3 * *"}), "spec.rotation.schedule", id="cron needs five fields"
            ),
            pytest.param(
                key_spec(rotation={"schedule": "0 3 * * * *"}),
                "spec.rotation.schedule",
                id="six-field cron with seconds is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "61 * * * *"}), "spec.rotation.schedule", id="minute 61 is refused"
            ),
            pytest.param(
                key_spec(rotation={"every": "720h", "timeZone": "UTC"}),
                "spec.rotation.timeZone",
                id="a time zone needs a schedule",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "Mars/Olympus"}),
                "spec.rotation.timeZone",
                id="unknown time zones are refused",
            ),
            pytest.param(
                key_spec(rotation={"every": "1h", "gracePeriod": "1h"}),
                "spec.rotation.gracePeriod",
                id="the grace period must be shorter than the interval",
            ),
            pytest.param(
                key_spec(rotation={"every": "1h", "restartTargets": [{"kind": "Pod", "name": "x"}]}),
                "spec.rotation.restartTargets[0].kind",
                id="pods are not restart targets",
            ),
            pytest.param(
                key_spec(
                    rotation={
                        "every": "1h",
                        "restartTargets": [{"kind": "Deployment", "name": "x"}, {"kind": "Deployment", "name": "x"}],
                    }
                ),
                "spec.rotation.restartTargets",
                id="restart targets are unique",
            ),
            pytest.param(key_spec(secret={"name": "A_B"}), "spec.secret.name", id="Secret names are DNS names"),
            pytest.param(
                key_spec(secret={"keys": {"apiKey": "API-KEY"}}),
                "spec.secret.keys.apiKey",
                id="data keys are env-var-like",
            ),
            pytest.param(
                key_spec(secret={"keys": {"apiKey": "X", "baseURL": "X"}}),
                "spec.secret.keys",
                id="data keys are distinct",
            ),
            pytest.param(
                key_spec(secret={"annotations": {"openai.operator.dev/x": "y"}}),
                "spec.secret.annotations",
                id="the operator's annotation prefix is reserved",
            ),
            pytest.param(
                {"projectRef": {"name": "p"}, "vault": {"path": "a/../b"}},
                "spec.vault.path",
                id="vault paths cannot climb",
            ),
            pytest.param({"projectRef": {"name": "p"}, "vault": {}}, "spec.vault.path", id="vault needs a path"),
            pytest.param(key_spec(budget={"monthlyUSD": -1}), "spec.budget.monthlyUSD", id="key budgets are positive"),
            pytest.param(
                key_spec(budget={"monthlyUSD": 1, "onExceeded": "HardLimit"}),
                "spec.budget.onExceeded",
                id="HardLimit is a project enforcement",
            ),
            pytest.param(key_spec(deletionPolicy="Archive"), "spec.deletionPolicy", id="Archive is a project policy"),
        ],
    )
    def test_invalid_key_specs_name_the_field(self, spec: dict[str, Any], path: str) -> None:
        with pytest.raises(SpecError) as caught:
            parse_key_spec(spec, name="k")
        assert caught.value.field_path == path, caught.value

    def test_spec_errors_are_permanent(self) -> None:
        with pytest.raises(PermanentError):
            parse_key_spec({}, name="k")


@pytest.mark.parametrize(
    ("path", "prefix", "inside"),
    [
        pytest.param("openai/team-a/chat", "openai/team-a/", True, id="a path under the prefix is inside"),
        pytest.param("openai/team-a/x/y", "openai/team-a", True, id="deeper paths are inside too"),
        pytest.param("openai/team-ab/chat", "openai/team-a/", False, id="a sibling with a longer name is outside"),
        pytest.param("openai/team-a", "openai/team-a/", False, id="the prefix itself is not a secret path"),
        pytest.param("openai/team-a/../team-b/x", "openai/team-a/", False, id="climbing out is outside"),
        pytest.param("openai/team-a//x", "openai/team-a/", False, id="empty segments are refused"),
        pytest.param("other/team-a/x", "openai/team-a/", False, id="another root is outside"),
    ],
)
def test_vault_path_within(path: str, prefix: str, inside: bool) -> None:
    assert vault_path_within(path, prefix) is inside


def test_spec_errors_never_echo_key_material() -> None:
    """A key pasted into the wrong field must not reach conditions or Events through the error."""
    pasted = "sk-proj-" + "Ab1_" * 10
    with pytest.raises(SpecError) as caught:
        parse_key_spec(key_spec(scopes=[pasted]), name="k")
    assert pasted not in str(caught.value)
    assert "sk-proj-[REDACTED]" in str(caught.value)
