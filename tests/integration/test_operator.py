"""The operator on the real test bed against the emulator: what a platform team and an application
team see. The last test scans everything this module produced for key material.
"""

from __future__ import annotations

import re
import secrets

import httpx
import hvac
import hvac.exceptions
import pytest

from harness import Emulator, OperatorProcess
from scenario import (
    DELIVERED,
    apply,
    condition,
    get,
    key_manifest,
    live_accounts_for,
    project_manifest,
    secret_value,
    start_peered,
    wait_ready,
)
from support import wait_for
from testbed import Kubectl, VaultServer


def test_project_and_key_lifecycle(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """apply project + key → a working key in the Secret; delete key → revoked; delete project → archived."""
    project_obj = wait_ready(kubectl, "openaiproject", project)
    project_id = project_obj["status"]["projectId"]
    assert emulator.project(project_id)["status"] == "active"

    apply(kubectl, key_manifest("chat", namespace, project))
    key = wait_ready(kubectl, "openaikey", "chat", "-n", namespace)
    status = key["status"]
    value = secret_value(kubectl, namespace, "chat")
    assert value is not None
    assert value.startswith("sk-svcacct-")
    assert emulator.models_status(value) == 200
    assert secret_value(kubectl, namespace, "chat", "OPENAI_PROJECT_ID") == project_id
    assert secret_value(kubectl, namespace, "chat", "OPENAI_BASE_URL") == emulator.base_url
    assert status["revision"] == 1
    assert status["keyId"]
    assert status["serviceAccountId"]
    assert status["redactedKey"] == value[:8] + "*" * (len(value) - 12) + value[-4:]
    assert status["destinations"]["secret"]["name"] == "chat"
    assert status["destinations"]["secret"]["fingerprint"].startswith("hmac-sha256:")
    assert status["expiresAt"]
    assert status["createdAt"]
    accounts = live_accounts_for(emulator, project_id, namespace, "chat")
    assert [a["id"] for a in accounts] == [status["serviceAccountId"]]

    secret = get(kubectl, "secret", "chat", "-n", namespace)
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "openai-operator"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == key["metadata"]["uid"]

    table = kubectl("get", "openaikey", "chat", "-n", namespace).stdout
    assert re.search(rf"chat\s+{project}\s+True\s+Issued", table), table
    projects_table = kubectl("get", "openaiproject", project).stdout
    assert project_id in projects_table
    assert "True" in projects_table

    wait_for(lambda: get(kubectl, "openaiproject", project).get("status", {}).get("keys") == 1,
             timeout=30, what="the project to count its key")

    metrics = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).text
    assert 'openai_operator_admin_api_requests_total{operation="create_service_account",status="200"}' in metrics
    assert 'openai_operator_keys{condition="Ready",status="True"} 1.0' in metrics, metrics
    assert 'openai_operator_reconcile_duration_seconds_count{kind="OpenAIKey",result="ok"}' in metrics
    assert httpx.get(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=10).status_code == 200

    kubectl("delete", "openaikey", "chat", "-n", namespace, "--timeout=60s")
    assert live_accounts_for(emulator, project_id, namespace, "chat") == []
    assert emulator.models_status(value) == 401
    wait_for(lambda: kubectl("get", "secret", "chat", "-n", namespace, check=False).returncode != 0,
             timeout=30, what="the delivered Secret to be removed")

    kubectl("delete", "openaiproject", project, "--timeout=60s")
    assert emulator.project(project_id)["status"] == "archived"


def test_namespace_not_allowed_gets_no_key_until_the_policy_allows_it(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str
) -> None:
    name = f"p-{secrets.token_hex(3)}"
    apply(kubectl, project_manifest(name, keyPolicy={"allowedNamespaces": {"selector": {
        "matchLabels": {"openai-access": "granted"}}}}))
    try:
        project_id = wait_ready(kubectl, "openaiproject", name)["status"]["projectId"]
        apply(kubectl, key_manifest("denied", namespace, name))
        refused = wait_for(
            lambda: condition(get(kubectl, "openaikey", "denied", "-n", namespace)).get("reason")
            == "NamespaceNotAllowed", timeout=60, what="Ready=False/NamespaceNotAllowed")
        assert refused
        key = get(kubectl, "openaikey", "denied", "-n", namespace)
        assert condition(key)["status"] == "False"
        assert namespace in condition(key)["message"]
        events = get(kubectl, "events", "-n", namespace,
                     "--field-selector", "involvedObject.name=denied,reason=NamespaceNotAllowed")
        assert len(events["items"]) == 1
        assert kubectl("get", "secret", "denied", "-n", namespace, check=False).returncode != 0
        assert live_accounts_for(emulator, project_id, namespace, "denied") == []

        kubectl("label", "namespace", namespace, "openai-access=granted")
        wait_ready(kubectl, "openaikey", "denied", "-n", namespace, timeout=60)
        assert len(live_accounts_for(emulator, project_id, namespace, "denied")) == 1
        events = get(kubectl, "events", "-n", namespace,
                     "--field-selector", "involvedObject.name=denied,reason=NamespaceNotAllowed")
        assert len(events["items"]) == 1, "the refusal is announced once, not on every re-check"
    finally:
        kubectl("delete", "openaikey", "denied", "-n", namespace, "--timeout=60s", check=False)
        kubectl("delete", "openaiproject", name, "--wait=false", check=False)


def test_key_for_a_missing_project_waits_for_it(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    name = f"p-{secrets.token_hex(3)}"
    apply(kubectl, key_manifest("early", namespace, name))
    wait_for(lambda: condition(get(kubectl, "openaikey", "early", "-n", namespace)).get("reason")
             == "ProjectNotFound", timeout=60, what="Ready=False/ProjectNotFound")
    apply(kubectl, project_manifest(name, keyPolicy={"allowedNamespaces": {"names": [namespace]}}))
    try:
        wait_ready(kubectl, "openaikey", "early", "-n", namespace, timeout=60)
    finally:
        kubectl("delete", "openaikey", "early", "-n", namespace, "--timeout=60s", check=False)
        kubectl("delete", "openaiproject", name, "--wait=false", check=False)


def test_a_secret_the_operator_does_not_own_is_never_overwritten(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    kubectl("create", "secret", "generic", "taken", "-n", namespace, "--from-literal=OPENAI_API_KEY=theirs")
    apply(kubectl, key_manifest("taken", namespace, project))
    wait_for(lambda: condition(get(kubectl, "openaikey", "taken", "-n", namespace)).get("reason")
             == "DestinationConflict", timeout=60, what="Ready=False/DestinationConflict")
    assert secret_value(kubectl, namespace, "taken") == "theirs"
    wait_for(lambda: live_accounts_for(emulator, project_id, namespace, "taken") == [], timeout=30,
             what="the credential minted for the refused Secret to be revoked")
    kubectl("delete", "openaikey", "taken", "-n", namespace, "--timeout=60s")
    assert secret_value(kubectl, namespace, "taken") == "theirs"


@pytest.mark.parametrize(
    ("window", "route", "method"),
    [
        ("after the service account exists, before the Secret is written",
         "/v1/organization/projects/*/api_keys/*", "POST"),
        ("while the new key is verified, before any destination holds it", "/v1/models", "GET"),
    ],
    ids=["while-scopes-are-set", "while-verifying"],
)
def test_sigkill_mid_issue_leaves_exactly_one_live_credential(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str,
    window: str, route: str, method: str,
) -> None:
    """SIGKILL the operator {window}: after a restart exactly one live credential exists and the
    Secret holds it."""
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    fault = emulator.add_fault({"route": route, "method": method, "latency_ms": 30000, "times": 1})
    try:
        apply(kubectl, key_manifest("crash", namespace, project, scopes=["api.model.read"]))
        wait_for(lambda: live_accounts_for(emulator, project_id, namespace, "crash"),
                 timeout=60, what="the first service account to be created")
        wait_for(lambda: any(f["id"] == fault["id"] and f["matched"] for f in emulator.faults()),
                 timeout=60, what=f"the operator to be stuck {window}")
        # Verification comes before delivery: no destination holds the new key yet.
        assert secret_value(kubectl, namespace, "crash") is None
        operator.kill()
        status = get(kubectl, "openaikey", "crash", "-n", namespace).get("status", {})
        assert "keyId" not in status
        assert status["pending"]["serviceAccountId"] == live_accounts_for(emulator, project_id, namespace,
                                                                          "crash")[0]["id"]
    finally:
        emulator.clear_faults()
    operator.start()
    key = wait_ready(kubectl, "openaikey", "crash", "-n", namespace, timeout=90)
    wait_for(lambda: len(live_accounts_for(emulator, project_id, namespace, "crash")) == 1, timeout=30,
             what="the unrecorded service account to be deleted")
    live = live_accounts_for(emulator, project_id, namespace, "crash")
    assert [a["id"] for a in live] == [key["status"]["serviceAccountId"]]
    value = secret_value(kubectl, namespace, "crash")
    assert value is not None
    assert emulator.models_status(value) == 200
    assert [k["id"] for k in live[0]["api_keys"]] == [key["status"]["keyId"]]
    assert live[0]["api_keys"][0]["scopes"] == ["api.model.read"]
    kubectl("delete", "openaikey", "crash", "-n", namespace, "--timeout=60s")


def test_converges_under_admin_api_faults_without_a_retry_storm(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str
) -> None:
    """30% 5xx and 429 bursts on the Admin API: every key still becomes Ready, with bounded calls."""
    name = f"p-{secrets.token_hex(3)}"
    emulator.reset_calls()
    emulator.add_fault({"route": "/v1/organization/*", "method": "*", "error_rate": 0.3, "error_status": 503,
                        "seed": 7})
    emulator.add_fault({"route": "/v1/organization/*", "method": "*", "rate_limit_burst": 5, "retry_after": 1})
    keys = [f"k{i}" for i in range(5)]
    try:
        apply(kubectl, project_manifest(name, keyPolicy={"allowedNamespaces": {"names": [namespace]}}))
        for key in keys:
            apply(kubectl, key_manifest(key, namespace, name))
        for key in keys:
            wait_ready(kubectl, "openaikey", key, "-n", namespace, timeout=180)
        project_id = get(kubectl, "openaiproject", name)["status"]["projectId"]
        for key in keys:
            live = live_accounts_for(emulator, project_id, namespace, key)
            status = get(kubectl, "openaikey", key, "-n", namespace)["status"]
            events = [e["message"] for e in get(kubectl, "events", "-n", namespace)["items"]]
            assert len(live) == 1, f"{key}: live {[(a['id'], a['name']) for a in live]}; {status=}; {events=}"
            assert status["revision"] == 1, f"{key} was issued more than once: {events=}"
            value = secret_value(kubectl, namespace, key)
            assert value is not None
            assert emulator.models_status(value) == 200
    finally:
        emulator.clear_faults()
    calls = emulator.admin_calls()
    total = sum(c["count"] for c in calls)
    failed = sum(c["count"] for c in calls if c["status"] >= 500 or c["status"] == 429)
    creates = sum(c["count"] for c in calls if c["method"] == "POST" and c["route"].endswith("/service_accounts"))
    print(f"\nAdmin API calls under faults for 1 project + {len(keys)} keys: total={total} "  # noqa: T201
          f"failed(5xx/429)={failed} service-account creates={creates}")
    assert failed > 0, "the faults were injected"
    assert total < 40 * (len(keys) + 1), f"retry storm: {total} Admin API calls"
    for key in keys:
        kubectl("delete", "openaikey", key, "-n", namespace, "--wait=false")
    kubectl("delete", "openaiproject", name, "--wait=false", check=False)


def test_two_replicas_with_peering_only_the_higher_priority_one_acts(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, namespace: str, project: str
) -> None:
    """HA: both replicas run, peering makes the lower-priority one stand by, so no key is issued twice."""
    peering, standby = start_peered(kubectl, operator_factory)
    try:
        project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
        apply(kubectl, key_manifest("ha", namespace, project))
        wait_ready(kubectl, "openaikey", "ha", "-n", namespace)
        assert len(live_accounts_for(emulator, project_id, namespace, "ha")) == 1
        peers = get(kubectl, "clusterkopfpeering", peering).get("status", {})
        assert sorted(p["priority"] for p in peers.values()) == [10, 20]
        handled = [line for line in standby.log_lines() if "succeeded" in str(line.get("event", ""))
                   and line.get("object")]
        assert handled == [], "the standby replica handled objects"
        kubectl("delete", "openaikey", "ha", "-n", namespace, "--timeout=60s")
    finally:
        standby.stop()


def test_retain_keeps_the_credential_and_the_secret(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """deletionPolicy: Retain — deleting the OpenAIKey revokes nothing, its service account is renamed
    retained.* (no sweep will touch it), and the Secret survives garbage collection (the operator
    drops its ownerReference first)."""
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    apply(kubectl, key_manifest("kept", namespace, project, deletionPolicy="Retain"))
    wait_ready(kubectl, "openaikey", "kept", "-n", namespace)
    value = secret_value(kubectl, namespace, "kept")
    assert value is not None
    kubectl("delete", "openaikey", "kept", "-n", namespace, "--timeout=60s")
    secret = get(kubectl, "secret", "kept", "-n", namespace)
    assert secret["metadata"].get("ownerReferences", []) == []
    assert secret_value(kubectl, namespace, "kept") == value
    assert emulator.models_status(value) == 200
    assert live_accounts_for(emulator, project_id, namespace, "kept") == [], "retained accounts are renamed"
    retained = [a for a in emulator.project(project_id)["service_accounts"]
                if a["name"].startswith("retained.") and a["name"].endswith(f".{namespace}.kept.r1")]
    assert len(retained) == 1


def test_a_key_of_an_archived_project_can_still_be_deleted(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """Deleting the project first archives it (its keys stop working); the keys' finalizers still
    complete instead of retrying against a project that refuses every change."""
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    apply(kubectl, key_manifest("late", namespace, project))
    wait_ready(kubectl, "openaikey", "late", "-n", namespace)
    kubectl("delete", "openaiproject", project, "--timeout=60s")
    assert emulator.project(project_id)["status"] == "archived"
    kubectl("delete", "openaikey", "late", "-n", namespace, "--timeout=60s")
    assert kubectl("get", "openaikey", "late", "-n", namespace, check=False).returncode != 0


def test_scopes_are_applied_and_changed_in_place(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """A read-only key can list models but not call a model; widening its scopes changes the same key
    in OpenAI (no new credential)."""
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    apply(kubectl, key_manifest("reader", namespace, project, scopes=["api.model.read"]))
    first = wait_ready(kubectl, "openaikey", "reader", "-n", namespace)["status"]
    value = secret_value(kubectl, namespace, "reader")
    assert value is not None
    assert first["scopes"] == ["api.model.read"]

    def chat_status() -> int:
        return httpx.post(f"{emulator.base_url}/chat/completions", timeout=10,
                          headers={"Authorization": f"Bearer {value}"},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).status_code

    assert emulator.models_status(value) == 200
    assert chat_status() in (401, 403)
    apply(kubectl, key_manifest("reader", namespace, project, scopes=[]))
    wait_for(lambda: key_status_scopes(kubectl, namespace, "reader") == [], timeout=30, what="scopes to widen")
    assert chat_status() == 200
    status = get(kubectl, "openaikey", "reader", "-n", namespace)["status"]
    assert (status["keyId"], status["revision"]) == (first["keyId"], first["revision"])
    [account] = live_accounts_for(emulator, project_id, namespace, "reader")
    assert account["api_keys"][0]["scopes"] in ([], None)


def key_status_scopes(kubectl: Kubectl, namespace: str, name: str) -> list[str] | None:
    return get(kubectl, "openaikey", name, "-n", namespace).get("status", {}).get("scopes")  # type: ignore[no-any-return]


def test_vault_delivery_drift_and_removal(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, vault: VaultServer, namespace: str,
    project: str,
) -> None:
    """A key delivered to Vault (KV v2, under the namespace's prefix): the path holds a working key;
    a hand-written new version is repaired by rotating; deleting the key removes the path; a path
    outside the prefix is refused."""
    operator_factory.env.update({"VAULT_ADDR": vault.address, "VAULT_TOKEN": vault.token})
    operator_factory.start()
    client = hvac.Client(url=vault.address, token=vault.token)
    path = f"openai/{namespace}/app"
    wait_ready(kubectl, "openaiproject", project)
    apply(kubectl, key_manifest("vaulted", namespace, project, vault={"path": path}))
    first = wait_ready(kubectl, "openaikey", "vaulted", "-n", namespace)["status"]
    stored = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    value = stored["data"]["data"]["api_key"]
    DELIVERED.add(value)
    assert emulator.models_status(value) == 200
    assert first["destinations"]["vault"]["path"] == f"secret/{path}"
    assert first["destinations"]["vault"]["version"] == stored["data"]["metadata"]["version"]
    assert stored["data"]["metadata"]["custom_metadata"]["managed-by"] == "openai-operator"

    client.secrets.kv.v2.create_or_update_secret(path=path, mount_point="secret",
                                                 secret={**stored["data"]["data"], "api_key": "edited"})
    repaired = wait_for(lambda: (s := get(kubectl, "openaikey", "vaulted", "-n", namespace)["status"])
                        and s["revision"] > first["revision"] and s, timeout=30, what="the Vault drift repair")
    fresh = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    DELIVERED.add(fresh["data"]["data"]["api_key"])
    assert emulator.models_status(fresh["data"]["data"]["api_key"]) == 200
    assert repaired["destinations"]["vault"]["version"] == fresh["data"]["metadata"]["version"]

    apply(kubectl, key_manifest("elsewhere", namespace, project, vault={"path": "openai/other-team/app"}))
    wait_for(lambda: condition(get(kubectl, "openaikey", "elsewhere", "-n", namespace)).get("reason")
             == "VaultPathNotAllowed", timeout=30, what="Ready=False/VaultPathNotAllowed")

    kubectl("delete", "openaikey", "vaulted", "elsewhere", "-n", namespace, "--timeout=60s")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")


def test_rate_limits_rename_and_adoption(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess
) -> None:
    """spec.rateLimits reach OpenAI (RateLimitsSynced), an unknown model is reported, spec.name renames
    the project, and spec.projectId adopts an existing project that deletion then retains."""
    name = f"p-{secrets.token_hex(3)}"
    apply(kubectl, project_manifest(name, rateLimits=[{"model": "gpt-4o-mini", "maxRequestsPerMinute": 42,
                                                       "maxTokensPerMinute": 4200}]))
    try:
        project = wait_ready(kubectl, "openaiproject", name)
        project_id = project["status"]["projectId"]
        synced = wait_for(lambda: condition(get(kubectl, "openaiproject", name), "RateLimitsSynced")
                          .get("status") == "True", timeout=30, what="RateLimitsSynced=True")
        assert synced
        [row] = [r for r in emulator.project(project_id)["rate_limits"] if r["model"] == "gpt-4o-mini"]
        assert (row["max_requests_per_1_minute"], row["max_tokens_per_1_minute"]) == (42, 4200)

        apply(kubectl, project_manifest(name, name="renamed-by-spec", rateLimits=[
            {"model": "gpt-4o-mini", "maxRequestsPerMinute": 42},
            {"model": "no-such-model", "maxRequestsPerMinute": 1},
        ]))
        wait_for(lambda: emulator.project(project_id)["name"] == "renamed-by-spec", timeout=30, what="the rename")
        refused = wait_for(lambda: (c := condition(get(kubectl, "openaiproject", name), "RateLimitsSynced"))
                           .get("reason") == "RateLimitsFailed" and c, timeout=30, what="RateLimitsSynced=False")
        assert "no-such-model" in refused["message"]
        assert condition(get(kubectl, "openaiproject", name))["status"] == "True"
    finally:
        kubectl("delete", "openaiproject", name, "--timeout=60s", check=False)

    existing = httpx.post(f"{emulator.base_url}/organization/projects", json={"name": "made-by-hand"}, timeout=10,
                          headers={"Authorization": f"Bearer {emulator.admin_key}"}).json()
    adopter = f"p-{secrets.token_hex(3)}"
    apply(kubectl, project_manifest(adopter, projectId=existing["id"]))
    adopted = wait_ready(kubectl, "openaiproject", adopter)
    assert adopted["status"]["projectId"] == existing["id"]
    assert condition(adopted)["reason"] == "Adopted"
    kubectl("delete", "openaiproject", adopter, "--timeout=60s")
    assert emulator.project(existing["id"])["status"] == "active", "an adopted project is retained"
