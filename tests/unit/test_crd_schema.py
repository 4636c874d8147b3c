"""Pure checks of the CRD manifests in ``crds/``: shape, documentation, and agreement with ``model``.

The apiserver checks much more (``tests/integration/test_crd_validation.py``); these run in
milliseconds and catch the usual slips: a field without a description (``kubectl explain`` would
show nothing), a status field the model writes but the schema would silently prune, a duration
pattern that drifted from the parser's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from openai_operator.model import resources, specs
from openai_operator.model.conditions import Condition
from openai_operator.model.durations import DURATION_PATTERN, MAX_DURATION_TEXT
from openai_operator.model.limits import MAX_PREVIOUS, MAX_TRIGGER_TOKEN_LENGTH
from openai_operator.model.status import (
    Delivery,
    KeyStatus,
    MemberStatus,
    ModelsStatus,
    PendingCredential,
    PreviousCredential,
    ProjectStatus,
    RetiredCredential,
    ServiceTiersStatus,
    Spend,
    SpendAlertRecord,
    SpendLimitStatus,
)

pytestmark = pytest.mark.unit

CRDS = Path(__file__).resolve().parents[2] / "crds"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CRDS / name).read_text())
    assert isinstance(data, dict)
    return data


def schema_of(crd: Mapping[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def walk(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield every schema node below ``node`` with a ``kubectl explain``-style path."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from walk(extra, f"{path}{{}}")


CRD_FILES = {"openaiprojects.yaml": resources.PROJECT_KIND, "openaikeys.yaml": resources.KEY_KIND}


@pytest.mark.parametrize(
    ("file", "kind", "scope", "short_name"),
    [
        pytest.param("openaiprojects.yaml", "OpenAIProject", "Cluster", "oaiproject", id="projects are cluster-scoped"),
        pytest.param("openaikeys.yaml", "OpenAIKey", "Namespaced", "oaikey", id="keys are namespaced"),
    ],
)
def test_crd_identity(file: str, kind: str, scope: str, short_name: str) -> None:
    """Group, version, scope, names and the status subresource are what the design says."""
    crd = load(file)
    spec = crd["spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert spec["group"] == resources.GROUP
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{resources.GROUP}"
    assert spec["scope"] == scope
    assert spec["names"]["kind"] == kind
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["openai"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (resources.VERSION, True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize(
    ("file", "columns"),
    [
        pytest.param(
            "openaiprojects.yaml",
            ["PROJECT-ID", "READY", "SPEND", "BUDGET", "USED", "KEYS", "AGE"],
            id="project columns",
        ),
        pytest.param(
            "openaikeys.yaml", ["PROJECT", "READY", "REASON", "SPEND", "NEXT-ROTATION", "AGE"], id="key columns"
        ),
    ],
)
def test_printer_columns(file: str, columns: list[str]) -> None:
    """``kubectl get`` shows the columns the design lists, Ready read from the Ready condition."""
    (version,) = load(file)["spec"]["versions"]
    printed = version["additionalPrinterColumns"]
    assert [c["name"].upper() for c in printed] == columns
    ready = next(c for c in printed if c["name"].upper() == "READY")
    assert ready["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'


@pytest.mark.parametrize("file", sorted(CRD_FILES), ids=lambda f: f"every field of {f} has a description")
def test_every_field_is_described(file: str) -> None:
    """``kubectl explain`` is only useful if every node carries a description.

    ``metadata`` is the exception: the apiserver forbids anything but its type there.
    """
    root = kind_path(file)
    nodes = walk(schema_of(load(file)), root)
    missing = [path for path, node in nodes if not node.get("description") and path != f"{root}.metadata"]
    assert missing == []


def kind_path(file: str) -> str:
    return CRD_FILES[file].lower()


@pytest.mark.parametrize("file", sorted(CRD_FILES), ids=lambda f: f"duration fields of {f} share the parser's pattern")
def test_duration_patterns_match_the_parser(file: str) -> None:
    """A duration the apiserver admits must parse in ``model.durations`` and vice versa."""
    durations = [
        (path, node)
        for path, node in walk(schema_of(load(file)), kind_path(file))
        if path.rsplit(".", 1)[-1] in DURATION_FIELDS
    ]
    assert durations
    for path, node in durations:
        assert node["pattern"] == DURATION_PATTERN, path


DURATION_FIELDS = ("every", "gracePeriod", "maxRotationInterval", "minRotationInterval", "maxGracePeriod")


@pytest.mark.parametrize(
    "path",
    [
        "openaikey.spec.rotation.every",
        "openaikey.spec.rotation.gracePeriod",
        "openaiproject.spec.keyPolicy.maxRotationInterval",
        "openaiproject.spec.keyPolicy.minRotationInterval",
        "openaiproject.spec.keyPolicy.maxGracePeriod",
    ],
    ids=lambda p: f"{p} is capped at the parser's maximum duration",
)
def test_every_duration_field_is_capped_like_the_parser(path: str) -> None:
    """A CEL rule bounds each duration (so ``timedelta`` and CEL never overflow) at ``MAX_DURATION``."""
    file = "openaikeys.yaml" if path.startswith("openaikey.") else "openaiprojects.yaml"
    node = dict(walk(schema_of(load(file)), kind_path(file)))[path]
    rules = [r["rule"] for r in node.get("x-kubernetes-validations", [])]
    guarded = f"!self.matches('{cel_literal(DURATION_PATTERN)}') || duration(self) <= duration('{MAX_DURATION_TEXT}')"
    assert guarded in rules


def test_the_duration_fields_are_all_known() -> None:
    """Every duration-shaped field in the CRDs is in ``DURATION_FIELDS`` (so none escapes the cap)."""
    found = {
        path.rsplit(".", 1)[-1]
        for file in CRD_FILES
        for path, node in walk(schema_of(load(file)), kind_path(file))
        if node.get("pattern") == DURATION_PATTERN
    }
    assert found == set(DURATION_FIELDS)


def cel_literal(pattern: str) -> str:
    """``pattern`` as the body of a single-quoted CEL string (backslashes doubled)."""
    return pattern.replace("\\", "\\\\")


def key_node(path: str) -> Mapping[str, Any]:
    return dict(walk(schema_of(load("openaikeys.yaml")), "openaikey"))[path]


def rules_of(node: Mapping[str, Any]) -> list[str]:
    return [" ".join(r["rule"].split()) for r in node.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize(
    "path",
    ["openaikey.spec.secret.labels", "openaikey.spec.secret.annotations"],
    ids=lambda p: f"keys of {p} are checked with the parser's pattern",
)
def test_metadata_keys_use_the_parsers_pattern(path: str) -> None:
    rule = next(r for r in rules_of(key_node(path)) if ".matches(" in r)
    assert f"k.matches('{cel_literal(specs.LABEL_KEY_PATTERN)}')" in rule
    assert "k.indexOf('/') <= 253" in rule


@pytest.mark.parametrize(
    ("path", "operator_keys"),
    [
        ("openaikey.spec.secret.labels", specs.OPERATOR_SECRET_LABELS),
        ("openaikey.spec.secret.annotations", specs.OPERATOR_SECRET_ANNOTATIONS),
    ],
    ids=["the managed-by label is guarded as in the parser", "the Reloader annotation is guarded as in the parser"],
)
def test_operator_metadata_is_guarded_like_the_parser(path: str, operator_keys: Mapping[str, str]) -> None:
    rules = rules_of(key_node(path))
    for key, value in operator_keys.items():
        assert f"!('{key}' in self) || self['{key}'] == '{value}'" in rules


def test_annotation_size_matches_the_parser() -> None:
    rules = rules_of(key_node("openaikey.spec.secret.annotations"))
    assert f"self.map(k, size(bytes(k)) + size(bytes(self[k]))).sum() <= {specs.MAX_SECRET_ANNOTATIONS_BYTES}" in rules


def test_label_values_use_the_parsers_pattern() -> None:
    node = key_node("openaikey.spec.secret.labels{}")
    assert (node["pattern"], node["maxLength"]) == (specs.LABEL_VALUE_PATTERN, 63)


def test_vault_field_refuses_the_parsers_reserved_fields() -> None:
    listed = ", ".join(f"'{f}'" for f in sorted(specs.VAULT_RESERVED_FIELDS, reverse=True))
    assert f"!(self in [{listed}])" in rules_of(key_node("openaikey.spec.vault.field"))


def test_time_zone_refuses_the_parsers_tz_folders() -> None:
    node = key_node("openaikey.spec.rotation.timeZone")
    listed = ", ".join(f"'{f}'" for f in specs.TZ_DATABASE_FOLDERS)
    assert f"!(self in [{listed}])" in rules_of(node)


@pytest.mark.parametrize(
    ("path", "key", "limit"),
    [
        ("openaikey.status.previous", "maxItems", MAX_PREVIOUS),
        ("openaikey.status.rotateToken", "maxLength", MAX_TRIGGER_TOKEN_LENGTH),
        ("openaikey.status.revokeToken", "maxLength", MAX_TRIGGER_TOKEN_LENGTH),
    ],
    ids=[
        "status.previous holds at most MAX_PREVIOUS entries",
        "status.rotateToken is as long as the longest rotate token the parser admits",
        "status.revokeToken is as long as the longest revoke token the parser admits",
    ],
)
def test_status_bounds_match_the_model_limits(path: str, key: str, limit: int) -> None:
    assert key_node(path)[key] == limit


SHARED_PATTERNS = [
    ("openaikeys.yaml", "openaikey.spec.projectRef.name", specs.DNS_SUBDOMAIN_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.secret.name", specs.DNS_SUBDOMAIN_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.rotation.restartTargets[].name", specs.DNS_SUBDOMAIN_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.secret.keys.apiKey", specs.ENV_NAME_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.secret.keys.projectId", specs.ENV_NAME_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.secret.keys.baseURL", specs.ENV_NAME_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.scopes[]", specs.SCOPE_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.vault.mount", specs.VAULT_PATH_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.vault.path", specs.VAULT_PATH_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.vault.field", specs.VAULT_FIELD_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.rotation.schedule", specs.CRON_PATTERN),
    ("openaikeys.yaml", "openaikey.spec.rotation.timeZone", specs.TIME_ZONE_PATTERN),
    ("openaiprojects.yaml", "openaiproject.spec.projectId", specs.PROJECT_ID_PATTERN),
    ("openaiprojects.yaml", "openaiproject.spec.rateLimits[].model", specs.MODEL_PATTERN),
    ("openaiprojects.yaml", "openaiproject.spec.keyPolicy.allowedNamespaces.names[]", specs.DNS_LABEL_PATTERN),
]


@pytest.mark.parametrize(
    ("file", "path", "pattern"),
    [pytest.param(*case, id=f"{case[1]} uses the parser's pattern") for case in SHARED_PATTERNS],
)
def test_patterns_match_the_parser(file: str, path: str, pattern: str) -> None:
    """What the apiserver admits, ``parse_key_spec``/``parse_project_spec`` admit too, and vice versa."""
    nodes = dict(walk(schema_of(load(file)), kind_path(file)))
    assert nodes[path]["pattern"] == pattern


@pytest.mark.parametrize("file", sorted(CRD_FILES), ids=lambda f: f"CEL rules of {f} carry a message")
def test_cel_rules_have_messages(file: str) -> None:
    """A CEL rule without a message makes the apiserver print the rule itself, which names no field."""
    rules = [
        (path, rule)
        for path, node in walk(schema_of(load(file)), kind_path(file))
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert rules
    for path, rule in rules:
        assert rule.get("message") or rule.get("messageExpression"), path


@pytest.mark.parametrize("file", sorted(CRD_FILES), ids=lambda f: f"strings and lists of {f} are bounded")
def test_lists_and_maps_are_bounded(file: str) -> None:
    """CEL cost estimation needs maxItems/maxProperties on every list and map under spec."""
    schema = schema_of(load(file))
    unbounded = [
        path
        for path, node in walk(schema["properties"]["spec"], "spec")
        if (node.get("type") == "array" and "maxItems" not in node)
        or ("additionalProperties" in node and "maxProperties" not in node)
    ]
    assert unbounded == []


def schema_accepts(schema: Mapping[str, Any], value: Any, path: str = "status") -> list[str]:
    """Paths in ``value`` the structural ``schema`` does not declare (they would be pruned)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or value is None:
        return []
    if isinstance(value, Mapping):
        props = schema.get("properties", {})
        out: list[str] = []
        for key, item in value.items():
            if key not in props:
                out.append(f"{path}.{key}")
            else:
                out.extend(schema_accepts(props[key], item, f"{path}.{key}"))
        return out
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in schema_accepts(schema["items"], item, f"{path}[{i}]")]
    return []


def full_key_status() -> KeyStatus:
    ready = Condition("Ready", "True", "Issued", "ok", NOW, 3)
    return KeyStatus(
        service_account_id="svc_acct_1",
        key_id="key_1",
        redacted_key="sk-svcac****abcd",
        revision=2,
        created_at=NOW,
        expires_at=NOW,
        last_rotated_at=NOW,
        next_rotation_at=NOW,
        previous=(PreviousCredential("key_0", "svc_acct_0", NOW),),
        pending=PendingCredential(3, "k8s.local.ns.k.r3", NOW, "Scheduled", service_account_id="svc_acct_3",
                                  key_id="key_3", redacted_key="sk-svcac****wxyz", fingerprint="hmac",
                                  expires_at=NOW, minted_at=NOW),
        destinations={"secret": Delivery("s", "hmac"), "vault": Delivery("secret/a", "hmac", 3)},
        restarted_revision=2,
        upstream_missing="svc_acct_0",
        refused_since=NOW,
        spend=Spend(1.5, NOW, 3.0, 10.0, NOW, (RetiredCredential("key_a", NOW),), 0.25),
        alerts_fired=(50,),
        forecast_alert_fired=True,
        failed_attempts=1,
        last_failure_time=NOW,
        rotate_token="a",
        revoke_token="b",
        conditions=(ready,),
        observed_generation=3,
        shard="team-a",
    )


def full_project_status() -> ProjectStatus:
    return ProjectStatus(
        project_id="proj_1",
        spend=Spend(1.0, NOW, 2.0, 3.0, NOW),
        spend_limit=SpendLimitStatus("enforcing", 100.0, managed=True),
        keys=4,
        alerts_fired=(50, 80),
        forecast_alert_fired=True,
        failed_attempts=1,
        last_failure_time=NOW,
        conditions=(Condition("Ready", "True", "Created", "", NOW, 1),),
        observed_generation=1,
        spend_alerts=(SpendAlertRecord("alert_1", 50), SpendAlertRecord("alert_2", 80)),
        members=(
            MemberStatus("a@example.com", "owner", "Active", user_id="user-a"),
            MemberStatus("b@example.com", "member", "Failed", invite_id="invite-b", invite_expires_at=NOW,
                         invites_sent=2, message="expired", reason="InviteExpired"),
        ),
        models=ModelsStatus("allow_list", ("gpt-4o-mini",)),
        service_tiers=ServiceTiersStatus("standard", ("flex",)),
    )


@pytest.mark.parametrize(
    ("file", "patch"),
    [
        pytest.param("openaikeys.yaml", full_key_status().to_patch(), id="every key status field is in the schema"),
        pytest.param(
            "openaiprojects.yaml", full_project_status().to_patch(), id="every project status field is in the schema"
        ),
    ],
)
def test_status_views_fit_the_schema(file: str, patch: dict[str, Any]) -> None:
    """What ``model.status`` writes is declared in the CRD, so the apiserver does not prune it."""
    schema = schema_of(load(file))["properties"]["status"]
    assert schema_accepts(schema, patch) == []
    assert set(schema["properties"]) - {"kopf"} == set(patch)


def test_condition_reason_pattern_admits_every_catalogued_reason() -> None:
    """Every reason in the catalogue passes the CRD's reason pattern."""
    from openai_operator.model.reasons import Reason

    reason_schema = schema_of(load("openaikeys.yaml"))["properties"]["status"]["properties"]["conditions"]["items"]
    pattern = re.compile(reason_schema["properties"]["reason"]["pattern"])
    assert [r.value for r in Reason if not pattern.fullmatch(r.value)] == []


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(full_key_status(), id="a full key status round-trips"),
        pytest.param(KeyStatus(), id="the initial key status round-trips"),
    ],
)
def test_key_status_round_trips(status: KeyStatus) -> None:
    """What ``to_patch`` writes, ``from_dict`` reads back unchanged (timestamps in whole seconds)."""
    assert KeyStatus.from_dict(status.to_patch()) == status


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(full_project_status(), id="a full project status round-trips"),
        pytest.param(ProjectStatus(), id="the initial project status round-trips"),
    ],
)
def test_project_status_round_trips(status: ProjectStatus) -> None:
    assert ProjectStatus.from_dict(status.to_patch()) == status


def test_status_timestamps_are_rfc3339_utc_with_z() -> None:
    patch = full_key_status().to_patch()
    assert patch["createdAt"] == "2026-11-23T12:00:00Z"
    assert patch["previous"] == [
        {"keyId": "key_0", "serviceAccountId": "svc_acct_0", "revokeAt": "2026-11-23T12:00:00Z"}
    ]


def test_an_empty_status_reads_as_the_initial_state() -> None:
    assert KeyStatus.from_dict(None) == KeyStatus()
    assert ProjectStatus.from_dict({}) == ProjectStatus()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("sk-proj-" + "A" * 48, id="a clear project key"),
        pytest.param("sk-svcacct-abcdefghijklmnopqrstuvwxyz*", id="a key with a token mask"),
        pytest.param("not-masked", id="anything without a mask"),
    ],
)
def test_redacted_key_refuses_key_material(value: str) -> None:
    with pytest.raises(ValueError, match="never the key itself"):
        KeyStatus(redacted_key=value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("sk-proj-" + "*" * 152 + "excA", id="OpenAI's redacted_value form"),
        pytest.param("sk-...abcd".replace("...", "…"), id="a shortened hint"),
    ],
)
def test_redacted_key_accepts_masked_values(value: str) -> None:
    assert KeyStatus(redacted_key=value).redacted_key == value


@pytest.mark.parametrize("file", ["openaikeys.yaml", "openaiprojects.yaml"])
def test_only_the_age_column_is_a_date(file: str) -> None:
    """kubectl renders a `date` column as an age, and a time in the future as <invalid>: a timestamp
    such as NEXT-ROTATION is a string column (found by the demo)."""
    columns = load(file)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns if c["type"] == "date"] == ["Age"]
