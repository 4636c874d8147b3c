"""Spec parsing: defaults the schema cannot express, and errors that name the field path."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from typing import Any

import pytest

from openai_operator.errors import PermanentError, SpecError
from openai_operator.model.durations import MAX_DURATION, format_duration, parse_duration
from openai_operator.model.specs import (
    OPERATOR_SECRET_ANNOTATIONS,
    OPERATOR_SECRET_LABELS,
    TZ_DATABASE_FOLDERS,
    VAULT_RESERVED_FIELDS,
    BudgetEnforcement,
    KeyDeletionPolicy,
    OnBudgetExceeded,
    ProjectDeletionPolicy,
    RestartKind,
    SecretDestination,
    VaultDestination,
    parse_key_spec,
    parse_project_spec,
    vault_path_within,
)
from openai_operator.secretvalue import SecretValue
from openai_operator.stores.base import KeyMaterial, Owner
from openai_operator.stores.kubernetes import secret_body
from openai_operator.stores.vault import vault_data

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
        "text",
        [
            pytest.param("99999999999999h", id="hours that would overflow timedelta"),
            pytest.param("99999999999999999999999999999ms", id="milliseconds that would overflow timedelta"),
            pytest.param("87601h", id="an hour more than ten years"),
            pytest.param("87600h1ms", id="a millisecond more than ten years"),
            pytest.param("80000h80000h", id="repeated units that add up to more than ten years"),
        ],
    )
    def test_durations_longer_than_ten_years_are_refused_not_overflowed(self, text: str) -> None:
        with pytest.raises(ValueError, match="longer than the maximum duration 87600h"):
            parse_duration(text)

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("87600h", id="exactly ten years in hours"),
            pytest.param("5256000m", id="exactly ten years in minutes"),
        ],
    )
    def test_the_maximum_duration_itself_is_accepted(self, text: str) -> None:
        assert parse_duration(text) == MAX_DURATION

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
        assert spec.key_policy.min_rotation_interval is None
        assert spec.key_policy.max_grace_period is None
        assert spec.key_policy.allows_namespace("team-a", {})

    def test_rotation_floor_and_grace_cap_are_durations(self) -> None:
        spec = parse_project_spec(
            {"keyPolicy": {"minRotationInterval": "24h", "maxRotationInterval": "24h", "maxGracePeriod": "30m"}},
            name="p",
        )
        assert spec.key_policy.min_rotation_interval == timedelta(hours=24)
        assert spec.key_policy.max_grace_period == timedelta(minutes=30)

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
                {"budget": {"monthlyUSD": 0.004, "enforcement": "HardLimit"}},
                "spec.budget.monthlyUSD",
                id="a hard limit is at least one cent",
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
                {"keyPolicy": {"maxRotationInterval": "99999999999999h"}},
                "spec.keyPolicy.maxRotationInterval",
                id="a maximum rotation interval that overflows is refused",
            ),
            pytest.param(
                {"keyPolicy": {"minRotationInterval": "99999999999999h"}},
                "spec.keyPolicy.minRotationInterval",
                id="a minimum rotation interval that overflows is refused",
            ),
            pytest.param(
                {"keyPolicy": {"maxGracePeriod": "99999999999999h"}},
                "spec.keyPolicy.maxGracePeriod",
                id="a maximum grace period that overflows is refused",
            ),
            pytest.param(
                {"keyPolicy": {"maxGracePeriod": "1 hour"}},
                "spec.keyPolicy.maxGracePeriod",
                id="the maximum grace period is a Go duration",
            ),
            pytest.param(
                {"keyPolicy": {"minRotationInterval": "48h", "maxRotationInterval": "24h"}},
                "spec.keyPolicy.minRotationInterval",
                id="a minimum rotation interval above the maximum is refused",
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
            # --- inputs that used to crash a handler (issue 8, item 7) ---
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "America"}),
                "spec.rotation.timeZone",
                id="a time zone naming the America folder of the tz database is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "Europe"}),
                "spec.rotation.timeZone",
                id="a time zone naming the Europe folder is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "America/Indiana"}),
                "spec.rotation.timeZone",
                id="a time zone naming a nested folder is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "America/__pycache__"}),
                "spec.rotation.timeZone",
                id="a time zone naming a folder that is not in the deny list is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "leapseconds"}),
                "spec.rotation.timeZone",
                id="a file of the tz database that is not a zone is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "Europe/../etc/passwd"}),
                "spec.rotation.timeZone",
                id="a time zone that climbs out of the database is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "timeZone": "Europe/Berlin\x00"}),
                "spec.rotation.timeZone",
                id="a time zone with a NUL character is refused",
            ),
            pytest.param(
                key_spec(rotation={"every": "99999999999999h"}),
                "spec.rotation.every",
                id="an interval that overflows timedelta is refused",
            ),
            pytest.param(
                key_spec(rotation={"every": "87601h"}),
                "spec.rotation.every",
                id="an interval of more than ten years is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "@daily", "gracePeriod": "99999999999999h"}),
                "spec.rotation.gracePeriod",
                id="a grace period that overflows timedelta is refused",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "0 0 30 2 *"}),
                "spec.rotation.schedule",
                id="a schedule that never fires is refused when parsed",
            ),
            pytest.param(
                key_spec(rotation={"schedule": "R 3 * * *"}),
                "spec.rotation.schedule",
                id="a schedule with a random field is refused when parsed",
            ),
            pytest.param(
                {"projectRef": {"name": "p"}, "vault": {"path": "openai/ns/k", "field": "project_id"}},
                "spec.vault.field",
                id="the Vault field may not be the project id field written next to the key",
            ),
            pytest.param(
                {"projectRef": {"name": "p"}, "vault": {"path": "openai/ns/k", "field": "base_url"}},
                "spec.vault.field",
                id="the Vault field may not be the base URL field written next to the key",
            ),
            pytest.param(
                key_spec(secret={"labels": {"team name": "a"}}),
                "spec.secret.labels",
                id="a label key with a space is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {"Example.com/team": "a"}}),
                "spec.secret.labels",
                id="a label key prefix with upper case is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {"a/b/c": "a"}}),
                "spec.secret.labels",
                id="a label key with two slashes is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {"x" * 64: "a"}}),
                "spec.secret.labels",
                id="a label key name longer than 63 characters is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {("a" * 60 + ".") * 4 + "b" * 20 + "/team": "a"}}),
                "spec.secret.labels",
                id="a label key prefix longer than 253 characters is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {"team": "a b"}}),
                "spec.secret.labels",
                id="a label value with a space is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {"team": "x" * 64}}),
                "spec.secret.labels",
                id="a label value longer than 63 characters is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {"team": "-a"}}),
                "spec.secret.labels",
                id="a label value starting with a dash is refused",
            ),
            pytest.param(
                key_spec(secret={"labels": {"app.kubernetes.io/managed-by": "helm"}}),
                "spec.secret.labels",
                id="the managed-by label the operator sets is refused with another value",
            ),
            pytest.param(
                key_spec(secret={"labels": {"openai.operator.dev/key": "x"}}),
                "spec.secret.labels",
                id="the operator's label prefix is reserved",
            ),
            pytest.param(
                key_spec(secret={"annotations": {"bad key": "x"}}),
                "spec.secret.annotations",
                id="an annotation key with a space is refused",
            ),
            pytest.param(
                key_spec(secret={"annotations": {"reloader.stakater.com/match": "false"}}),
                "spec.secret.annotations",
                id="the Reloader annotation the operator sets is refused with another value",
            ),
            pytest.param(
                key_spec(secret={"annotations": {f"note-{i}": "x" * 4000 for i in range(33)}}),
                "spec.secret.annotations",
                id="annotations larger than 128 KiB together are refused",
            ),
            pytest.param(
                key_spec(secret={"annotations": {"note": "x" * 4097}}),
                "spec.secret.annotations.note",
                id="an annotation value longer than 4096 characters is refused",
            ),
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


class TestSecretMetadata:
    @pytest.mark.parametrize(
        "secret",
        [
            pytest.param({"labels": {"example.com/team": "a-b.c_d"}}, id="a prefixed label key is accepted"),
            pytest.param({"labels": {"team": ""}}, id="an empty label value is accepted"),
            pytest.param(
                {"labels": {"x" * 63: "y" * 63}}, id="a label key name and value of 63 characters are accepted"
            ),
            pytest.param(
                {"labels": {"app.kubernetes.io/managed-by": "openai-operator"}},
                id="the managed-by label with the operator's own value is accepted",
            ),
            pytest.param(
                {"annotations": {"reloader.stakater.com/match": "true"}},
                id="the Reloader annotation with the operator's own value is accepted",
            ),
            pytest.param(
                {"annotations": {"note": "any text, with spaces: and / slashes\nand lines"}},
                id="annotation values may be any text",
            ),
            pytest.param(
                {"annotations": {f"note-{i}": "x" * 4000 for i in range(32)}},
                id="annotations just under 128 KiB together are accepted",
            ),
        ],
    )
    def test_valid_metadata_is_accepted(self, secret: dict[str, Any]) -> None:
        spec = parse_key_spec(key_spec(secret=secret), name="k")
        assert spec.secret is not None
        assert {**spec.secret.labels, **spec.secret.annotations} == {
            **secret.get("labels", {}),
            **secret.get("annotations", {}),
        }

    def test_the_operators_own_secret_metadata_is_what_the_store_writes(self) -> None:
        """The labels and annotations the parser guards are the ones ``stores.kubernetes`` sets."""
        material = KeyMaterial(SecretValue("sk-proj-" + "a" * 40), "proj_1", None, "key_1", 1)
        body = secret_body("ns", SecretDestination(name="s"), Owner("ns", "k", "uid-1"), material)
        labels, annotations = body["metadata"]["labels"], body["metadata"]["annotations"]
        assert {k: labels[k] for k in OPERATOR_SECRET_LABELS} == dict(OPERATOR_SECRET_LABELS)
        assert {k: annotations[k] for k in OPERATOR_SECRET_ANNOTATIONS} == dict(OPERATOR_SECRET_ANNOTATIONS)

    def test_user_metadata_written_by_the_store_is_not_overridden(self) -> None:
        """Every label or annotation the parser admits reaches the Secret unchanged."""
        spec = parse_key_spec(
            key_spec(
                secret={
                    "labels": {"team": "a", "app.kubernetes.io/managed-by": "openai-operator"},
                    "annotations": {"note": "x", "reloader.stakater.com/match": "true"},
                }
            ),
            name="k",
        )
        assert spec.secret is not None
        material = KeyMaterial(SecretValue("sk-proj-" + "a" * 40), "proj_1", None, "key_1", 1)
        body = secret_body("ns", spec.secret, Owner("ns", "k", "uid-1"), material)
        assert spec.secret.labels.items() <= body["metadata"]["labels"].items()
        assert spec.secret.annotations.items() <= body["metadata"]["annotations"].items()


class TestVaultField:
    def test_reserved_fields_are_the_ones_the_store_writes_next_to_the_key(self) -> None:
        """``VAULT_RESERVED_FIELDS`` covers every field ``stores.vault.vault_data`` writes besides the key."""
        destination = VaultDestination(path="openai/ns/k", field="token")
        material = KeyMaterial(SecretValue("sk-proj-" + "a" * 40), "proj_1", "http://x/v1", "key_1", 1)
        assert set(vault_data(destination, material)) - {"token"} == VAULT_RESERVED_FIELDS

    @pytest.mark.parametrize(
        "field",
        [
            pytest.param("api_key", id="the default field is accepted"),
            pytest.param("PROJECT_ID", id="fields are case-sensitive, so upper case does not collide"),
            pytest.param("project_id.v2", id="a field that only starts like a reserved one is accepted"),
        ],
    )
    def test_other_fields_are_accepted(self, field: str) -> None:
        spec = parse_key_spec({"projectRef": {"name": "p"}, "vault": {"path": "openai/ns/k", "field": field}}, name="k")
        assert spec.vault is not None
        assert spec.vault.field == field


class TestTimeZones:
    def test_the_deny_list_names_every_folder_of_the_installed_tz_database(self) -> None:
        """The CRD refuses folders by name; the list must not miss one that ``tzdata`` ships."""
        root = resources.files("tzdata") / "zoneinfo"
        found: list[str] = []

        def walk(node: Any, prefix: str) -> None:
            for child in node.iterdir():
                if child.is_dir() and not child.name.startswith("_"):
                    found.append(prefix + child.name)
                    walk(child, prefix + child.name + "/")

        walk(root, "")
        assert sorted(found) == sorted(TZ_DATABASE_FOLDERS)

    @pytest.mark.parametrize(
        "zone",
        [
            pytest.param("Europe/Berlin", id="a city zone is accepted"),
            pytest.param("America/Argentina/Buenos_Aires", id="a zone three levels deep is accepted"),
            pytest.param("Etc/GMT+5", id="a fixed-offset zone with a plus sign is accepted"),
            pytest.param("UTC", id="UTC is accepted"),
            pytest.param("Japan", id="a single-word zone is accepted"),
        ],
    )
    def test_zones_are_accepted(self, zone: str) -> None:
        spec = parse_key_spec(key_spec(rotation={"schedule": "@daily", "timeZone": zone}), name="k")
        assert spec.rotation is not None
        assert spec.rotation.time_zone == zone
