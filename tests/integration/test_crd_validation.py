"""The CRDs against a real kube-apiserver: bad manifests fail at ``kubectl apply`` and say where.

Each invalid manifest in the table is applied with ``kubectl apply --server-side``; the test asserts
that the apiserver refuses it and that the error names the offending field (``spec.rotation.every``),
which is the whole point of validating in the schema first. Valid manifests must be accepted with
their defaults filled in, immutable fields must stay immutable, and ``kubectl explain`` must have
something to say.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from openai_operator.model.conditions import Condition
from openai_operator.model.status import (
    Delivery,
    KeyStatus,
    PreviousCredential,
    Spend,
)
from support import wait_for
from testbed import Kubectl

pytestmark = pytest.mark.integration

API_VERSION = "openai.operator.dev/v1alpha1"


def project(spec: dict[str, Any] | None = None, *, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "OpenAIProject",
        "metadata": {"name": name or f"p-{secrets.token_hex(4)}"},
    }
    if spec is not None:
        body["spec"] = spec
    return body


def key(spec: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "OpenAIKey",
        "metadata": {"name": name or f"k-{secrets.token_hex(4)}"},
        "spec": spec,
    }


def key_spec(**fields: Any) -> dict[str, Any]:
    """A valid key spec (project ref plus a Secret destination) with ``fields`` replacing parts."""
    return {"projectRef": {"name": "team-a"}, "secret": {"name": "openai"}, **fields}


def every(value: str, **more: Any) -> dict[str, Any]:
    return {"every": value, **more}


INVALID: list[Any] = [
    # --- OpenAIKey ----------------------------------------------------------------------------------
    pytest.param(
        key({"projectRef": {"name": "team-a"}}),
        ["spec.secret", "spec.vault"],
        id="a key without any destination is rejected naming both destinations",
    ),
    pytest.param(key({"secret": {"name": "s"}}), ["spec.projectRef"], id="a key without projectRef is rejected"),
    pytest.param(
        key(key_spec(projectRef={"name": "Team_A"})),
        ["spec.projectRef.name"],
        id="a projectRef name that is not a DNS subdomain is rejected",
    ),
    pytest.param(
        key(key_spec(rotation={"every": "720h", "schedule": "0 3 * * *"})),
        ["spec.rotation.every", "spec.rotation.schedule"],
        id="rotation with both every and schedule is rejected",
    ),
    pytest.param(
        key(key_spec(rotation={"gracePeriod": "5m"})),
        ["spec.rotation.every"],
        id="rotation with neither every nor schedule is rejected",
    ),
    pytest.param(
        key(key_spec(rotation=every("30d"))),
        ["spec.rotation.every"],
        id="a rotation interval in days is rejected because Go durations stop at hours",
    ),
    pytest.param(
        key(key_spec(rotation=every("1s"))),
        ["spec.rotation.every"],
        id="a rotation interval below ten seconds is rejected",
    ),
    pytest.param(
        key(key_spec(rotation={"schedule": "0 3 * *"})),
        ["spec.rotation.schedule"],
        id="a cron schedule with four fields is rejected",
    ),
    pytest.param(
        key(key_spec(rotation=every("720h", timeZone="Europe/Berlin"))),
        ["spec.rotation.timeZone"],
        id="a time zone without a schedule is rejected",
    ),
    pytest.param(
        key(key_spec(rotation=every("1h", gracePeriod="2h"))),
        ["spec.rotation.gracePeriod"],
        id="a grace period longer than the rotation interval is rejected",
    ),
    pytest.param(
        key(key_spec(rotation=every("720h", gracePeriod="soon"))),
        ["spec.rotation.gracePeriod"],
        id="a grace period that is not a duration is rejected",
    ),
    pytest.param(
        key(key_spec(rotation=every("720h", restartTargets=[{"kind": "Pod", "name": "web"}]))),
        ["spec.rotation.restartTargets[0].kind"],
        id="a restart target of kind Pod is rejected",
    ),
    pytest.param(
        key(
            key_spec(
                rotation=every(
                    "720h",
                    restartTargets=[{"kind": "Deployment", "name": "web"}, {"kind": "Deployment", "name": "web"}],
                )
            )
        ),
        ["spec.rotation.restartTargets", 'kind="Deployment",name="web"'],
        id="the same restart target twice is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "My_Secret"})),
        ["spec.secret.name"],
        id="a Secret name that is not a DNS subdomain is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "keys": {"apiKey": "OPENAI-API-KEY"}})),
        ["spec.secret.keys.apiKey"],
        id="a Secret data key that is not env-var-like is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "keys": {"apiKey": "KEY", "projectId": "KEY"}})),
        ["spec.secret.keys"],
        id="two Secret data keys with the same name are rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "labels": {"openai.operator.dev/owner": "me"}})),
        ["spec.secret.labels"],
        id="Secret labels under the operator's reserved prefix are rejected",
    ),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"mount": "secret"}}),
        ["spec.vault.path"],
        id="a Vault destination without a path is rejected",
    ),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"path": "openai/team-a/../team-b/chat"}}),
        ["spec.vault.path"],
        id="a Vault path that climbs out with .. is rejected",
    ),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"path": "/openai/team-a/chat"}}),
        ["spec.vault.path"],
        id="an absolute Vault path is rejected",
    ),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"path": "openai/a", "field": "api key"}}),
        ["spec.vault.field"],
        id="a Vault field with a space is rejected",
    ),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"path": "openai/a", "mount": "kv//x"}}),
        ["spec.vault.mount"],
        id="a Vault mount with an empty segment is rejected",
    ),
    pytest.param(
        key(key_spec(budget={"monthlyUSD": 0})),
        ["spec.budget.monthlyUSD"],
        id="a key budget of zero dollars is rejected",
    ),
    pytest.param(
        key(key_spec(budget={"monthlyUSD": 10, "alertThresholds": [80, 50]})),
        ["spec.budget.alertThresholds"],
        id="key alert thresholds out of order are rejected",
    ),
    pytest.param(
        key(key_spec(budget={"monthlyUSD": 10, "alertThresholds": [5000]})),
        ["spec.budget.alertThresholds[0]"],
        id="a key alert threshold above 1000 percent is rejected",
    ),
    pytest.param(
        key(key_spec(budget={"monthlyUSD": 10, "onExceeded": "Block"})),
        ["spec.budget.onExceeded"],
        id="an unknown onExceeded action is rejected",
    ),
    pytest.param(
        key(key_spec(deletionPolicy="Delete")),
        ["spec.deletionPolicy"],
        id="an unknown key deletion policy is rejected",
    ),
    pytest.param(key(key_spec(scopes=["API.ALL"])), ["spec.scopes[0]"], id="an upper-case scope is rejected"),
    # --- inputs that used to crash a handler (issue 8, item 7) -------------------------------------
    pytest.param(
        key(key_spec(rotation={"schedule": "@daily", "timeZone": "America"})),
        ["spec.rotation.timeZone", "folder of the time-zone database"],
        id="a time zone naming a folder of the tz database is rejected",
    ),
    pytest.param(
        key(key_spec(rotation={"schedule": "@daily", "timeZone": "America/Indiana"})),
        ["spec.rotation.timeZone", "folder of the time-zone database"],
        id="a time zone naming a nested tz folder is rejected",
    ),
    pytest.param(
        key(key_spec(rotation={"schedule": "@daily", "timeZone": "America/__pycache__"})),
        ["spec.rotation.timeZone"],
        id="a time zone segment that does not start with a letter is rejected",
    ),
    pytest.param(
        key(key_spec(rotation=every("99999999999999h"))),
        ["spec.rotation.every", "at most 87600h"],
        id="an interval that overflows a duration is rejected",
    ),
    pytest.param(
        key(key_spec(rotation=every("87601h"))),
        ["spec.rotation.every", "at most 87600h"],
        id="an interval of more than ten years is rejected",
    ),
    pytest.param(
        key(key_spec(rotation={"schedule": "@daily", "gracePeriod": "87601h"})),
        ["spec.rotation.gracePeriod", "at most 87600h"],
        id="a grace period of more than ten years is rejected",
    ),
    pytest.param(
        key(key_spec(rotation={"schedule": "@daily", "gracePeriod": "99999999999999h"})),
        ["spec.rotation.gracePeriod", "at most 87600h"],
        id="a grace period that overflows a duration is rejected",
    ),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"path": "openai/a", "field": "project_id"}}),
        ["spec.vault.field", "project_id or base_url"],
        id="a Vault field that collides with the project id field is rejected",
    ),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"path": "openai/a", "field": "base_url"}}),
        ["spec.vault.field"],
        id="a Vault field that collides with the base URL field is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "labels": {"team name": "a"}})),
        ["spec.secret.labels", "valid label keys"],
        id="a Secret label key with a space is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "labels": {"x" * 64: "a"}})),
        ["spec.secret.labels", "valid label keys"],
        id="a Secret label key name longer than 63 characters is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "labels": {("a" * 60 + ".") * 4 + "b" * 20 + "/team": "a"}})),
        ["spec.secret.labels", "valid label keys"],
        id="a Secret label key prefix longer than 253 characters is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "labels": {"team": "a b"}})),
        ["spec.secret.labels.team"],
        id="a Secret label value with a space is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "labels": {"app.kubernetes.io/managed-by": "helm"}})),
        ["spec.secret.labels", "app.kubernetes.io/managed-by"],
        id="a managed-by label other than the operator's is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "annotations": {"bad key": "x"}})),
        ["spec.secret.annotations", "valid annotation keys"],
        id="a Secret annotation key with a space is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "annotations": {"reloader.stakater.com/match": "false"}})),
        ["spec.secret.annotations", "reloader.stakater.com/match"],
        id="a Reloader annotation other than the operator's is rejected",
    ),
    pytest.param(
        key(key_spec(secret={"name": "s", "annotations": {f"note-{i}": "x" * 4000 for i in range(33)}})),
        ["spec.secret.annotations", "131072 bytes"],
        id="Secret annotations larger than 128 KiB together are rejected",
    ),
    pytest.param(
        key(key_spec(secretName="typo")),
        ["spec.secretName"],
        id="an unknown key field is rejected rather than silently dropped",
    ),
    # --- OpenAIProject ------------------------------------------------------------------------------
    pytest.param(
        project({"budget": {"enforcement": "Alert"}}),
        ["spec.budget.monthlyUSD"],
        id="a project budget without an amount is rejected",
    ),
    pytest.param(
        project({"budget": {"monthlyUSD": -5}}),
        ["spec.budget.monthlyUSD"],
        id="a negative project budget is rejected",
    ),
    pytest.param(
        project({"budget": {"monthlyUSD": 5, "enforcement": "Block"}}),
        ["spec.budget.enforcement"],
        id="an unknown budget enforcement is rejected",
    ),
    pytest.param(
        project({"budget": {"monthlyUSD": 5, "alertThresholds": [50, 50]}}),
        ["spec.budget.alertThresholds", "50"],
        id="a repeated project alert threshold is rejected",
    ),
    pytest.param(
        project({"budget": {"monthlyUSD": 5, "alertEmails": ["not-an-email"]}}),
        ["spec.budget.alertEmails[0]"],
        id="an alert email without an at sign is rejected",
    ),
    pytest.param(
        project({"budget": {"monthlyUSD": 0.004, "enforcement": "HardLimit"}}),
        ["spec.budget.monthlyUSD", "HardLimit"],
        id="a hard limit below one cent is rejected",
    ),
    pytest.param(project({"projectId": "abc"}), ["spec.projectId"], id="a project id without proj_ is rejected"),
    pytest.param(
        project({"deletionPolicy": "Revoke"}),
        ["spec.deletionPolicy"],
        id="the key deletion policy Revoke is rejected on a project",
    ),
    pytest.param(
        project(
            {
                "rateLimits": [
                    {"model": "gpt-4o", "maxRequestsPerMinute": 10},
                    {"model": "gpt-4o", "maxTokensPerMinute": 10},
                ]
            }
        ),
        ["spec.rateLimits", 'model="gpt-4o"'],
        id="two rate limits for the same model are rejected",
    ),
    pytest.param(
        project({"rateLimits": [{"model": "gpt-4o"}]}),
        ["spec.rateLimits[0]"],
        id="a rate limit that limits nothing is rejected",
    ),
    pytest.param(
        project({"rateLimits": [{"model": "gpt-4o", "maxRequestsPerMinute": 0}]}),
        ["spec.rateLimits[0].maxRequestsPerMinute"],
        id="a rate limit of zero requests is rejected",
    ),
    pytest.param(
        project({"rateLimits": [{"model": "gpt 4o", "maxRequestsPerMinute": 5}]}),
        ["spec.rateLimits[0].model"],
        id="a model name with a space is rejected",
    ),
    pytest.param(
        project({"keyPolicy": {"maxKeys": 0}}), ["spec.keyPolicy.maxKeys"], id="a key quota of zero is rejected"
    ),
    pytest.param(
        project({"keyPolicy": {"maxRotationInterval": "30 days"}}),
        ["spec.keyPolicy.maxRotationInterval"],
        id="a maximum rotation interval that is not a duration is rejected",
    ),
    pytest.param(
        project({"keyPolicy": {"maxRotationInterval": "99999999999999h"}}),
        ["spec.keyPolicy.maxRotationInterval", "at most 87600h"],
        id="a maximum rotation interval that overflows a duration is rejected",
    ),
    pytest.param(
        project({"keyPolicy": {"minRotationInterval": "87601h"}}),
        ["spec.keyPolicy.minRotationInterval", "at most 87600h"],
        id="a minimum rotation interval of more than ten years is rejected",
    ),
    pytest.param(
        project({"keyPolicy": {"minRotationInterval": "48h", "maxRotationInterval": "24h"}}),
        ["spec.keyPolicy.minRotationInterval", "must not be longer than"],
        id="a minimum rotation interval above the maximum is rejected",
    ),
    pytest.param(
        project({"keyPolicy": {"maxGracePeriod": "1 hour"}}),
        ["spec.keyPolicy.maxGracePeriod"],
        id="a maximum grace period that is not a duration is rejected",
    ),
    pytest.param(
        project({"keyPolicy": {"maxGracePeriod": "99999999999999h"}}),
        ["spec.keyPolicy.maxGracePeriod"],
        id="a maximum grace period that overflows a duration is rejected",
    ),
    pytest.param(
        project({"keyPolicy": {"allowedNamespaces": {"names": ["Team_A"]}}}),
        ["spec.keyPolicy.allowedNamespaces.names[0]"],
        id="an allowed namespace that is not a DNS label is rejected",
    ),
    pytest.param(
        project(
            {
                "keyPolicy": {
                    "allowedNamespaces": {"selector": {"matchExpressions": [{"key": "team", "operator": "Matches"}]}}
                }
            }
        ),
        ["spec.keyPolicy.allowedNamespaces.selector.matchExpressions[0].operator"],
        id="an unknown selector operator is rejected",
    ),
    pytest.param(
        project(
            {
                "keyPolicy": {
                    "allowedNamespaces": {"selector": {"matchExpressions": [{"key": "team", "operator": "In"}]}}
                }
            }
        ),
        ["spec.keyPolicy.allowedNamespaces.selector.matchExpressions[0].values"],
        id="a selector In without values is rejected",
    ),
    pytest.param(project({"name": ""}), ["spec.name"], id="an empty OpenAI-side project name is rejected"),
    pytest.param(
        project({"budgets": {"monthlyUSD": 5}}),
        ["spec.budgets"],
        id="an unknown project field is rejected rather than silently dropped",
    ),
]

VALID: list[Any] = [
    pytest.param(project(), id="a project without spec is accepted"),
    pytest.param(project({"budget": {"monthlyUSD": 0.004}}),
                 id="a budget below one cent without HardLimit is accepted"),
    pytest.param(
        project(
            {
                "name": "Team A chat",
                "projectId": "proj_abc123",
                "deletionPolicy": "Retain",
                "budget": {
                    "monthlyUSD": 250.5,
                    "alertThresholds": [25, 50, 100, 150],
                    "enforcement": "HardLimit",
                    "alertEmails": ["platform@example.com"],
                },
                "rateLimits": [
                    {"model": "gpt-4o-mini", "maxRequestsPerMinute": 500, "maxTokensPerMinute": 200000},
                    {"model": "ft:gpt-4o-mini:org:custom:abc", "maxRequestsPerDay": 10000},
                ],
                "keyPolicy": {
                    "allowedNamespaces": {
                        "names": ["team-a"],
                        "selector": {
                            "matchLabels": {"openai.operator.dev/tenant": "true"},
                            "matchExpressions": [
                                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                                {"key": "frozen", "operator": "DoesNotExist"},
                            ],
                        },
                    },
                    "maxKeys": 20,
                    "maxRotationInterval": "2160h",
                    "minRotationInterval": "1h",
                    "maxGracePeriod": "4h",
                },
            }
        ),
        id="a project using every field is accepted",
    ),
    pytest.param(key(key_spec()), id="a key with only a Secret destination is accepted"),
    pytest.param(
        key(
            key_spec(
                secret={
                    "name": "s",
                    "labels": {
                        "example.com/team": "a-b.c_d",
                        "empty": "",
                        "app.kubernetes.io/managed-by": "openai-operator",
                    },
                    "annotations": {"reloader.stakater.com/match": "true", "example.com/note": "any text: here"},
                }
            )
        ),
        id="valid Secret labels and annotations, the operator's own with its values, are accepted",
    ),
    pytest.param(
        key(key_spec(rotation={"schedule": "@daily", "timeZone": "America/Argentina/Buenos_Aires"})),
        id="a time zone three levels deep is accepted",
    ),
    pytest.param(key(key_spec(rotation=every("87600h"))), id="an interval of exactly ten years is accepted"),
    pytest.param(
        key({"projectRef": {"name": "team-a"}, "vault": {"path": "openai/team-a/chat"}}),
        id="a key with only a Vault destination is accepted",
    ),
    pytest.param(
        key(key_spec(rotation={"every": "0.5h", "gracePeriod": "1m500ms"})),
        id="fractional and millisecond durations are accepted like Go parses them",
    ),
    pytest.param(
        key(key_spec(rotation={"schedule": "30 3 * * MON-FRI", "timeZone": "Europe/Berlin", "gracePeriod": "15m"})),
        id="a key rotated on a cron schedule in a time zone is accepted",
    ),
    pytest.param(
        key(
            {
                "projectRef": {"name": "team-a"},
                "scopes": ["api.all.read"],
                "secret": {
                    "name": "openai-chat",
                    "keys": {"apiKey": "KEY", "projectId": "PROJECT", "baseURL": "BASE"},
                    "labels": {"app": "chat"},
                    "annotations": {"reloader.stakater.com/match": "true"},
                },
                "vault": {"mount": "kv", "path": "openai/team-a/chat", "field": "token"},
                "rotation": {
                    "every": "1h30m",
                    "gracePeriod": "90s",
                    "restartTargets": [{"kind": "Deployment", "name": "chat"}, {"kind": "StatefulSet", "name": "chat"}],
                },
                "budget": {"monthlyUSD": 12.5, "alertThresholds": [90], "onExceeded": "Revoke"},
                "deletionPolicy": "Retain",
            }
        ),
        id="a key using every field is accepted",
    ),
]


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl, crds: list[str]) -> Iterator[str]:
    """One namespace for every OpenAIKey of this module (keys have no finalizers, so none linger)."""
    name = f"crd-validation-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def scope(manifest: dict[str, Any], namespace: str) -> list[str]:
    return ["-n", namespace] if manifest["kind"] == "OpenAIKey" else []


def apply(kubectl: Kubectl, manifest: dict[str, Any], namespace: str, *, check: bool = False) -> Any:
    return kubectl(
        "apply",
        "--server-side",
        "--field-manager=crd-test",
        *scope(manifest, namespace),
        "-f",
        "-",
        input=json.dumps(manifest),
        check=check,
    )


def delete(kubectl: Kubectl, manifest: dict[str, Any], namespace: str) -> None:
    name = manifest["metadata"]["name"]
    kubectl("delete", manifest["kind"].lower(), name, *scope(manifest, namespace), "--wait=false", check=False)


def get(kubectl: Kubectl, manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    name = manifest["metadata"]["name"]
    out = kubectl("get", manifest["kind"].lower(), name, *scope(manifest, namespace), "-o", "json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.parametrize(("manifest", "fields"), INVALID)
def test_invalid_manifest_is_rejected_naming_the_field(
    kubectl: Kubectl, ns: str, manifest: dict[str, Any], fields: list[str]
) -> None:
    result = apply(kubectl, manifest, ns)
    if result.returncode == 0:
        delete(kubectl, manifest, ns)
    assert result.returncode != 0, f"accepted:\n{yaml.safe_dump(manifest)}"
    for field in fields:
        assert field in result.stderr, result.stderr


@pytest.mark.parametrize("manifest", VALID)
def test_valid_manifest_is_accepted(kubectl: Kubectl, ns: str, manifest: dict[str, Any]) -> None:
    result = apply(kubectl, manifest, ns)
    try:
        assert result.returncode == 0, result.stderr
    finally:
        delete(kubectl, manifest, ns)


def test_defaults_are_filled_in_by_the_apiserver(kubectl: Kubectl, ns: str) -> None:
    """Defaults the schema can express are visible on the stored object, not only in the operator."""
    manifest = key(key_spec(rotation=every("720h"), budget={"monthlyUSD": 5}))
    apply(kubectl, manifest, ns, check=True)
    try:
        spec = get(kubectl, manifest, ns)["spec"]
    finally:
        delete(kubectl, manifest, ns)
    assert spec["secret"]["keys"] == {
        "apiKey": "OPENAI_API_KEY",
        "projectId": "OPENAI_PROJECT_ID",
        "baseURL": "OPENAI_BASE_URL",
    }
    assert spec["rotation"]["gracePeriod"] == "1h"
    assert spec["budget"] == {"monthlyUSD": 5, "alertThresholds": [50, 80, 100], "onExceeded": "Alert"}
    assert spec["deletionPolicy"] == "Revoke"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"projectId": "proj_other"}, "spec.projectId is immutable", id="changing projectId is rejected"),
        pytest.param({}, "spec.projectId is immutable", id="removing projectId is rejected"),
    ],
)
def test_project_id_is_immutable_once_set(kubectl: Kubectl, ns: str, change: dict[str, Any], message: str) -> None:
    manifest = project({"projectId": "proj_first", "deletionPolicy": "Retain"})
    apply(kubectl, manifest, ns, check=True)
    try:
        changed = project({"deletionPolicy": "Retain", **change}, name=manifest["metadata"]["name"])
        result = kubectl("replace", "-f", "-", input=json.dumps(changed), check=False)
        assert result.returncode != 0
        assert message in result.stderr
        assert "proj_first" in result.stderr, "the message should say what the id is"
        assert get(kubectl, manifest, ns)["spec"]["projectId"] == "proj_first"
    finally:
        delete(kubectl, manifest, ns)


def test_project_id_can_be_set_later_to_adopt(kubectl: Kubectl, ns: str) -> None:
    """Immutable "once set": a project created without an id may still adopt one."""
    manifest = project({"name": "later"})
    apply(kubectl, manifest, ns, check=True)
    try:
        patch = json.dumps({"spec": {"projectId": "proj_later"}})
        kubectl("patch", "openaiproject", manifest["metadata"]["name"], "--type=merge", "-p", patch)
    finally:
        delete(kubectl, manifest, ns)


def test_project_ref_is_immutable(kubectl: Kubectl, ns: str) -> None:
    manifest = key(key_spec())
    apply(kubectl, manifest, ns, check=True)
    try:
        patch = json.dumps({"spec": {"projectRef": {"name": "team-b"}}})
        result = kubectl(
            "patch", "openaikey", manifest["metadata"]["name"], "-n", ns, "--type=merge", "-p", patch, check=False
        )
        assert result.returncode != 0
        assert "spec.projectRef.name is immutable (it is team-a)" in result.stderr
    finally:
        delete(kubectl, manifest, ns)


def test_status_written_by_the_model_is_kept(kubectl: Kubectl, ns: str) -> None:
    """``KeyStatus.to_patch`` fits the status schema: nothing is pruned, timestamps round-trip."""
    from datetime import UTC, datetime

    now = datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)
    status = KeyStatus(
        service_account_id="svc_acct_1",
        key_id="key_1",
        redacted_key="sk-svcac********abcd",
        revision=2,
        created_at=now,
        next_rotation_at=now,
        previous=(PreviousCredential("key_0", "svc_acct_0", now),),
        destinations={"secret": Delivery("openai", "hmac-sha256:00")},
        spend=Spend(1.25, period_start=now, percent_of_budget=12.5, as_of=now),
        conditions=(Condition("Ready", "True", "Issued", "delivered", now, 1),),
        observed_generation=1,
    )
    manifest = key(key_spec())
    apply(kubectl, manifest, ns, check=True)
    try:
        patch = json.dumps({"status": status.to_patch()})
        name = manifest["metadata"]["name"]
        kubectl("patch", "openaikey", name, "-n", ns, "--subresource=status", "--type=merge", "-p", patch)
        stored = get(kubectl, manifest, ns)
        assert KeyStatus.from_dict(stored["status"]) == status
        table = kubectl("get", "oaikey", name, "-n", ns).stdout
    finally:
        delete(kubectl, manifest, ns)
    header, row = table.splitlines()
    assert header.split() == ["NAME", "PROJECT", "READY", "REASON", "SPEND", "NEXT-ROTATION", "AGE"]
    assert row.split()[:5] == [name, "team-a", "True", "Issued", "1.25"]


def test_kubectl_explain_describes_rotation(kubectl: Kubectl, crds: list[str]) -> None:
    def explain() -> str:
        result = kubectl("explain", "openaikey.spec.rotation", check=False)
        return result.stdout if result.returncode == 0 else ""

    text = " ".join(wait_for(explain, timeout=60, what="kubectl explain openaikey.spec.rotation").split())
    for word in ("every", "schedule", "timeZone", "gracePeriod", "restartTargets", "exactly one of every or schedule"):
        assert word in text, text


def test_short_names_and_category(kubectl: Kubectl, crds: list[str]) -> None:
    """``kubectl get openai`` lists both kinds; the short names resolve."""
    resources = kubectl("api-resources", "--api-group=openai.operator.dev", "-o", "wide").stdout
    assert "oaiproject" in resources
    assert "oaikey" in resources
    assert kubectl("get", "openai", "-A", check=False).returncode == 0
