"""The failure paths of issue 8, one test each, on the real test bed: the emulator's fault injection,
admission policies on the real apiserver that deny the operator's patches, and OpenBao behind a
proxy that is cut mid-rotation.

Every test that involves a delivered key watches the destination while it runs (``failures.KeyWatch``)
and checks at each observation that the key it holds still answers 200 on the data plane: a
workload that re-reads its Secret never holds a revoked key. "Nothing happened" checks first wait for
a positive signal (inventory passes counted on the emulator, retries counted in metrics).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from failures import (
    ApiCounter,
    KeyWatch,
    account_ids,
    apiserver_metric,
    assert_dead,
    assert_live,
    deny_with_policy,
    events_for,
    fault_rule,
    key_id_of,
    lift_policy,
    metric,
    refused,
    remove_fault,
    secret_reader,
    service_accounts_path,
    shown,
    vault_reader,
    wait_condition,
    wait_inventory_passes,
    watching,
)
from harness import Emulator, OperatorProcess
from proxy import TcpProxy
from scenario import (
    apply,
    condition,
    get,
    key_manifest,
    key_status,
    live_accounts_for,
    operator_instance_id,
    project_manifest,
    secret_value,
    wait_ready,
    wait_revision,
)
from support import wait_for
from testbed import KubeCluster, Kubectl, VaultServer

ROTATE = "openai.operator.dev/rotate"
REVOKE = "openai.operator.dev/revoke"
FOLLOWUP_FAILURES = "openai_operator_followup_failures_total"


@pytest.fixture(autouse=True)
def _faults_cleared(emulator: Emulator) -> Iterator[None]:
    yield
    emulator.clear_faults()


@pytest.fixture
def policies(kubectl: Kubectl) -> Iterator[list[str]]:
    """Names of admission policies a test installed; lifted afterwards whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        lift_policy(kubectl, name)


def admin(emulator: Emulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{emulator.base_url}{path}", timeout=10,
                         headers={"Authorization": f"Bearer {emulator.admin_key}"}, **kwargs)


def project_id_of(kubectl: Kubectl, project: str) -> str:
    return wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]  # type: ignore[no-any-return]


def secret_watch(kube: KubeCluster, emulator: Emulator, namespace: str, name: str) -> KeyWatch:
    return KeyWatch(f"Secret {namespace}/{name}", secret_reader(kube.kubeconfig, namespace, name), emulator)


def annotate(kubectl: Kubectl, namespace: str, name: str, annotation: str, value: str) -> None:
    kubectl("annotate", "openaikey", name, "-n", namespace, f"{annotation}={value}", "--overwrite")


# --- 1. delivery before verification ---------------------------------------------------------------


def test_a_rotation_whose_verification_keeps_failing_delivers_nothing_and_revokes_nothing(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """A persistent 503 on ``GET /v1/models`` during a rotation: the Secret keeps the old key, which
    stays live; the new service account is deleted; after the fault clears the rotation completes."""
    project_id = project_id_of(kubectl, project)
    apply(kubectl, key_manifest("app", namespace, project, rotation={"every": "720h", "gracePeriod": "3s"}))
    first = wait_ready(kubectl, "openaikey", "app", "-n", namespace)["status"]
    old = secret_value(kubectl, namespace, "app")
    assert_live(emulator, old, "the first key works")
    with secret_watch(kube, emulator, namespace, "app") as watch:
        fault = emulator.add_fault({"route": "/v1/models", "method": "GET", "error_rate": 1.0, "error_status": 503})
        annotate(kubectl, namespace, "app", ROTATE, "verification-fails")
        wait_for(lambda: key_status(kubectl, namespace, "app").get("failedAttempts", 0) >= 1, timeout=60,
                 what="a failed rotation attempt")
        assert shown(watch.values) == shown([old]), "a key that was never verified reached the Secret"
        wait_for(lambda: events_for(kubectl, namespace, "app", "VerificationFailed"), timeout=30,
                 what="a VerificationFailed Event")
        wait_for(lambda: [a["id"] for a in live_accounts_for(emulator, project_id, namespace, "app")]
                 == [first["serviceAccountId"]], timeout=30, what="the unverified service account to be deleted")
        during = key_status(kubectl, namespace, "app")
        assert during["keyId"] == first["keyId"]
        assert condition(get(kubectl, "openaikey", "app", "-n", namespace))["status"] == "True", \
            "the current key still works and is still delivered: the key stays Ready"
        assert_live(emulator, old, "the old key was revoked although its successor never got anywhere")
        assert fault_rule(emulator, fault["id"])["injected"] >= 1

        remove_fault(emulator, fault["id"])
        after = wait_revision(kubectl, namespace, "app", first["revision"], timeout=90)
        new = wait_for(lambda: (v := secret_value(kubectl, namespace, "app")) != old and v, timeout=30,
                       what="the successor in the Secret")
        delivered = key_id_of(emulator, project_id, new)
        assert after["keyId"] == delivered
        assert_live(emulator, new, "the successor works")
    watch.assert_never_held_a_dead_key()


def test_a_first_issue_whose_verification_keeps_failing_writes_no_secret(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """The same for the very first credential: no Secret exists until verification succeeds."""
    project_id = project_id_of(kubectl, project)
    fault = emulator.add_fault({"route": "/v1/models", "method": "GET", "error_rate": 1.0, "error_status": 503})
    with secret_watch(kube, emulator, namespace, "fresh") as watch:
        apply(kubectl, key_manifest("fresh", namespace, project))
        wait_for(lambda: key_status(kubectl, namespace, "fresh").get("failedAttempts", 0) >= 1, timeout=60,
                 what="a failed first issue")
        written = [o for o in watch.observations if o.value is not None]
        assert written == [], "a Secret was written before its key was verified"
        wait_for(lambda: events_for(kubectl, namespace, "fresh", "VerificationFailed"), timeout=30,
                 what="a VerificationFailed Event")
        wait_for(lambda: live_accounts_for(emulator, project_id, namespace, "fresh") == [], timeout=30,
                 what="the unverified service account to be deleted")
        assert condition(get(kubectl, "openaikey", "fresh", "-n", namespace)).get("status") != "True"
        assert fault_rule(emulator, fault["id"])["injected"] >= 1

        remove_fault(emulator, fault["id"])
        status = wait_ready(kubectl, "openaikey", "fresh", "-n", namespace, timeout=90)["status"]
        value = wait_for(lambda: secret_value(kubectl, namespace, "fresh"), timeout=30, what="the Secret")
        delivered = key_id_of(emulator, project_id, value)
        assert status["keyId"] == delivered
    watch.assert_never_held_a_dead_key()


def test_a_destination_unreachable_mid_rotation_never_leaves_a_revoked_key_anywhere(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator_factory: OperatorProcess, vault: VaultServer,
    namespace: str, project: str,
) -> None:
    """A key delivered to a Secret and to Vault; Vault becomes unreachable (a cut proxy) while the
    rotation creates its service account. The old key is never revoked while the Secret or Vault holds
    it, neither holds a dead key, and once Vault is back both hold the successor."""
    proxy = TcpProxy.to(vault.address).start()
    try:
        operator_factory.env.update({"VAULT_ADDR": proxy.address, "VAULT_TOKEN": vault.token})
        operator_factory.start()
        project_id = project_id_of(kubectl, project)
        path = f"openai/{namespace}/app"
        apply(kubectl, key_manifest("app", namespace, project, vault={"path": path},
                                    rotation={"every": "720h", "gracePeriod": "3s"}))
        first = wait_ready(kubectl, "openaikey", "app", "-n", namespace)["status"]
        in_vault = vault_reader(vault.address, vault.token, path)
        old = secret_value(kubectl, namespace, "app")
        same = in_vault() == old
        assert same, "Vault and the Secret hold the same key"
        assert_live(emulator, old, "the first key works")
        watches = (secret_watch(kube, emulator, namespace, "app"),
                   KeyWatch(f"Vault secret/{path}", in_vault, emulator))
        with watching(*watches):
            slow = emulator.add_fault({"route": service_accounts_path(project_id), "method": "POST",
                                       "latency_ms": 3000, "times": 1})
            annotate(kubectl, namespace, "app", ROTATE, "vault-goes-away")
            wait_for(lambda: fault_rule(emulator, slow["id"]).get("matched", 0) >= 1, timeout=60,
                     what="the rotation to create its service account")
            proxy.cut()
            wait_for(lambda: proxy.refused >= 3, timeout=90, what="the operator to retry the unreachable Vault")
            assert_live(emulator, secret_value(kubectl, namespace, "app"),
                        "the Secret holds a dead key while Vault is unreachable")
            unchanged = in_vault() == old
            assert unchanged, "Vault changed while it was unreachable through the operator's address"
            assert_live(emulator, old, "the old key was revoked while Vault still held it")

            proxy.restore()

            def both_hold_the_successor() -> str | None:
                value = secret_value(kubectl, namespace, "app")
                return value if value and value != old and in_vault() == value else None

            new = wait_for(both_hold_the_successor, timeout=90, what="the Secret and Vault to hold the successor")
            assert_live(emulator, new, "the successor works")
            final = wait_for(lambda: (s := key_status(kubectl, namespace, "app")) and not s.get("previous")
                             and s.get("revision", 0) > first["revision"] and s, timeout=60,
                             what="the old credential to be revoked after its grace")
            delivered = key_id_of(emulator, project_id, new)
            assert final["keyId"] == delivered
            assert_dead(emulator, old, "the old key is revoked after its grace")
        for watch in watches:
            watch.assert_never_held_a_dead_key()
    finally:
        proxy.stop()


def test_a_key_whose_spec_the_operator_refuses_still_deletes_its_vault_path_and_revokes(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, vault: VaultServer,
    namespace: str, project: str,
) -> None:
    """Item 8: an edit the CRD accepts but the operator refuses (a grace period longer than the
    schedule's shortest gap) makes the key InvalidSpec; deleting it still removes the Vault path
    status recorded and revokes the credential (the finalizer works from status, not the spec)."""
    operator_factory.env.update({"VAULT_ADDR": vault.address, "VAULT_TOKEN": vault.token})
    operator_factory.start()
    project_id = project_id_of(kubectl, project)
    path = f"openai/{namespace}/unparsed"
    apply(kubectl, key_manifest("unparsed", namespace, project, vault={"path": path}))
    status = wait_ready(kubectl, "openaikey", "unparsed", "-n", namespace)["status"]
    in_vault = vault_reader(vault.address, vault.token, path)
    value = in_vault()
    assert_live(emulator, value, "the delivered key works")
    apply(kubectl, key_manifest("unparsed", namespace, project, vault={"path": path},
                                rotation={"schedule": "0 * * * *", "gracePeriod": "2h"}))
    wait_condition(kubectl, namespace, "openaikey", "unparsed", status="False", reason="InvalidSpec")
    kubectl("delete", "openaikey", "unparsed", "-n", namespace, "--timeout=60s")
    assert in_vault() is None, "the Vault path recorded in status was removed"
    assert status["serviceAccountId"] not in account_ids(emulator, project_id)
    assert_dead(emulator, value, "the credential of the deleted key is revoked")


# --- 2. errors after a successful issue ------------------------------------------------------------


def test_a_restart_target_that_refuses_the_patch_keeps_the_new_credential_and_reports_degraded(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str,
    policies: list[str],
) -> None:
    """An admission policy denies every update of the restart target: the rotated credential is
    recorded (status.keyId is the key in the Secret), not re-issued, and Degraded=True/RestartFailed;
    once the policy is lifted the target restarts and Degraded clears."""
    project_id = project_id_of(kubectl, project)
    kubectl("create", "deployment", "web", "-n", namespace, "--image=registry.invalid/web:1")
    apply(kubectl, key_manifest("rolled", namespace, project, rotation={
        "every": "720h", "gracePeriod": "3s", "restartTargets": [{"kind": "Deployment", "name": "web"}]}))
    first = wait_ready(kubectl, "openaikey", "rolled", "-n", namespace)["status"]

    def rolled_for() -> str | None:
        template = get(kubectl, "deployment", "web", "-n", namespace)["spec"]["template"]["metadata"]
        return (template.get("annotations") or {}).get("openai.operator.dev/key.rolled")

    wait_for(lambda: rolled_for() == f"r{first['revision']}", timeout=30, what="the first rollout")
    name, message = f"h4-deny-restart-{namespace}", "h4: updates of Deployment web are denied"
    probe = json.dumps({"spec": {"template": {"metadata": {"annotations": {"h4-probe": "1"}}}}})
    deny_with_policy(
        kubectl, name, namespace=namespace, group="apps", resource="deployments",
        expression="object.metadata.name != 'web'", message=message,
        probe=lambda: refused(kubectl("patch", "deployment", "web", "-n", namespace, "--type=merge", "-p", probe,
                                      "--dry-run=server", check=False), message))
    policies.append(name)
    creates = ApiCounter(emulator, service_accounts_path(project_id), "POST")
    with secret_watch(kube, emulator, namespace, "rolled") as watch:
        annotate(kubectl, namespace, "rolled", ROTATE, "restart-denied")
        wait_condition(kubectl, namespace, "openaikey", "rolled", "Degraded", status="True", reason="RestartFailed")
        wait_for(lambda: metric(operator, FOLLOWUP_FAILURES, action="restart") >= 2, timeout=60,
                 what="the restart to be retried on its own")
        status = key_status(kubectl, namespace, "rolled")
        value = secret_value(kubectl, namespace, "rolled")
        assert value is not None
        delivered = key_id_of(emulator, project_id, value)
        assert status["keyId"] == delivered, "the delivered credential is not the recorded one"
        assert status["revision"] == first["revision"] + 1
        assert creates.count() == 1, "the rotation was issued again instead of retrying the restart"
        assert rolled_for() == f"r{first['revision']}"
        assert events_for(kubectl, namespace, "rolled", "RestartFailed")

        lift_policy(kubectl, name)
        wait_for(lambda: rolled_for() == f"r{status['revision']}", timeout=60, what="the restart once allowed")
        wait_for(lambda: condition(get(kubectl, "openaikey", "rolled", "-n", namespace), "Degraded")
                 .get("status") != "True", timeout=30, what="Degraded to clear")
        assert key_status(kubectl, namespace, "rolled")["revision"] == status["revision"]
        assert creates.count() == 1
    watch.assert_never_held_a_dead_key()


def test_a_revocation_that_fails_keeps_the_previous_credential_recorded_and_retries_it(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """Deleting service accounts fails (503) when the previous credential's grace ends:
    Degraded=True/RevocationFailed, the previous credential stays in status, and it is revoked once
    the fault clears."""
    project_id = project_id_of(kubectl, project)
    apply(kubectl, key_manifest("revoker", namespace, project, rotation={"every": "720h", "gracePeriod": "3s"}))
    first = wait_ready(kubectl, "openaikey", "revoker", "-n", namespace)["status"]
    old = secret_value(kubectl, namespace, "revoker")
    fault = emulator.add_fault({"route": service_accounts_path(project_id) + "/*", "method": "DELETE",
                                "error_rate": 1.0, "error_status": 503})
    with secret_watch(kube, emulator, namespace, "revoker") as watch:
        annotate(kubectl, namespace, "revoker", ROTATE, "revocation-fails")
        second = wait_revision(kubectl, namespace, "revoker", first["revision"])
        wait_condition(kubectl, namespace, "openaikey", "revoker", "Degraded", status="True",
                       reason="RevocationFailed")
        status = key_status(kubectl, namespace, "revoker")
        assert first["serviceAccountId"] in [p["serviceAccountId"] for p in status.get("previous", [])]
        assert status["keyId"] == second["keyId"]
        assert first["serviceAccountId"] in account_ids(emulator, project_id)
        assert fault_rule(emulator, fault["id"])["injected"] >= 1
        assert events_for(kubectl, namespace, "revoker", "RevocationFailed")
        assert metric(operator, FOLLOWUP_FAILURES, action="revoke") >= 1

        remove_fault(emulator, fault["id"])
        wait_for(lambda: first["serviceAccountId"] not in account_ids(emulator, project_id)
                 and not key_status(kubectl, namespace, "revoker").get("previous"), timeout=60,
                 what="the previous credential to be revoked once deletes work again")
        wait_for(lambda: condition(get(kubectl, "openaikey", "revoker", "-n", namespace), "Degraded")
                 .get("status") != "True", timeout=30, what="Degraded to clear")
        assert_dead(emulator, old, "the previous key is revoked once deletes work")
        assert key_status(kubectl, namespace, "revoker")["revision"] == second["revision"]
    watch.assert_never_held_a_dead_key()


def test_a_denied_promotion_is_retried_without_minting_another_credential(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str,
    policies: list[str],
) -> None:
    """An admission policy denies the status patch that promotes the new credential (status.keyId
    may not change while a marker label is on the key): after it is allowed, the key converges with
    one extra service account, and the Secret's key is live throughout."""
    project_id = project_id_of(kubectl, project)
    apply(kubectl, key_manifest("promo", namespace, project, rotation={"every": "720h", "gracePeriod": "3s"}))
    first = wait_ready(kubectl, "openaikey", "promo", "-n", namespace)["status"]
    marker = "h4.openai.operator.dev/hold-promotion"
    kubectl("label", "openaikey", "promo", "-n", namespace, f"{marker}=true")
    name, message = f"h4-hold-promotion-{namespace}", "h4: status.keyId is held"
    expression = (
        f"!has(object.metadata.labels) || !('{marker}' in object.metadata.labels) || "
        "(has(oldObject.status) && has(oldObject.status.keyId) ? "
        "(has(object.status) && has(object.status.keyId) && object.status.keyId == oldObject.status.keyId) : "
        "!(has(object.status) && has(object.status.keyId)))"
    )
    forged = json.dumps({"status": {"keyId": "key_h4probe"}})
    deny_with_policy(
        kubectl, name, namespace=namespace, group="openai.operator.dev", resource="openaikeys/status",
        expression=expression, message=message,
        probe=lambda: refused(kubectl("patch", "openaikey", "promo", "-n", namespace, "--subresource=status",
                                      "--type=merge", "-p", forged, "--dry-run=server", check=False), message))
    policies.append(name)
    denials_before = apiserver_metric(kubectl, "apiserver_validating_admission_policy_check_total", policy=name,
                                      enforcement_action="deny")
    creates = ApiCounter(emulator, service_accounts_path(project_id), "POST")
    with secret_watch(kube, emulator, namespace, "promo") as watch:
        annotate(kubectl, namespace, "promo", ROTATE, "promotion-denied")
        wait_for(lambda: apiserver_metric(kubectl, "apiserver_validating_admission_policy_check_total", policy=name,
                                          enforcement_action="deny") >= denials_before + 3,
                 timeout=90, what="the operator to try the promotion three times")
        assert creates.count() <= 1, f"{creates.count()} service accounts minted for one rotation"
        assert key_status(kubectl, namespace, "promo")["keyId"] == first["keyId"]

        kubectl("label", "openaikey", "promo", "-n", namespace, f"{marker}-")
        after = wait_revision(kubectl, namespace, "promo", first["revision"], timeout=90)
        value = secret_value(kubectl, namespace, "promo")
        assert value is not None
        delivered = key_id_of(emulator, project_id, value)
        assert after["keyId"] == delivered
        assert creates.count() == 1, f"{creates.count()} service accounts minted for one rotation"
        wait_for(lambda: [a["id"] for a in live_accounts_for(emulator, project_id, namespace, "promo")]
                 == [after["serviceAccountId"]], timeout=30, what="only the promoted credential to be left")
    watch.assert_never_held_a_dead_key()


# --- 3. Retain --------------------------------------------------------------------------------------


def test_a_retained_credential_survives_the_orphan_sweep(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """deletionPolicy Retain: after the key is deleted and two inventory passes ran, the retained
    service account is live (renamed out of the operator's names) and the Secret's key answers 200."""
    project_id = project_id_of(kubectl, project)
    apply(kubectl, key_manifest("kept", namespace, project, deletionPolicy="Retain"))
    key = wait_ready(kubectl, "openaikey", "kept", "-n", namespace)
    retained = key["status"]["serviceAccountId"]
    value = secret_value(kubectl, namespace, "kept")
    with secret_watch(kube, emulator, namespace, "kept") as watch:
        kubectl("delete", "openaikey", "kept", "-n", namespace, "--timeout=60s")
        wait_inventory_passes(emulator, project_id, 2)
        assert retained in account_ids(emulator, project_id), "the orphan sweep revoked a retained credential"
        kept = secret_value(kubectl, namespace, "kept") == value
        assert kept, "the Secret of a retained key changed"
        assert_live(emulator, value, "the retained key works")
    watch.assert_never_held_a_dead_key()
    secret = get(kubectl, "secret", "kept", "-n", namespace)
    owners = [r["uid"] for r in secret["metadata"].get("ownerReferences") or []]
    assert key["metadata"]["uid"] not in owners
    [account] = [a for a in emulator.project(project_id)["service_accounts"] if a["id"] == retained]
    assert account["name"] == f"retained.{operator_instance_id(kubectl)}.{namespace}.kept.r1"


# --- 4. sweeps and finalizers that could hit someone else's credential -----------------------------


def test_a_second_project_adopting_the_same_project_id_is_refused_and_sweeps_nothing(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str
) -> None:
    upstream = admin(emulator, "POST", "/organization/projects", json={"name": f"shared-{secrets.token_hex(3)}"})
    project_id = upstream.json()["id"]
    first, second = f"p-{secrets.token_hex(3)}", f"p-{secrets.token_hex(3)}"
    policy = {"allowedNamespaces": {"names": [namespace]}}
    try:
        apply(kubectl, project_manifest(first, projectId=project_id, keyPolicy=policy))
        wait_ready(kubectl, "openaiproject", first)
        apply(kubectl, key_manifest("shared", namespace, first))
        sa = wait_ready(kubectl, "openaikey", "shared", "-n", namespace)["status"]["serviceAccountId"]
        deletes = ApiCounter(emulator, service_accounts_path(project_id) + "/*", "DELETE")
        with secret_watch(kube, emulator, namespace, "shared") as watch:
            apply(kubectl, project_manifest(second, projectId=project_id, keyPolicy=policy))
            wait_condition(kubectl, None, "openaiproject", second)
            wait_inventory_passes(emulator, project_id, 4)
            assert sa in account_ids(emulator, project_id), "the second project's inventory swept the first's key"
            assert deletes.count() == 0
            assert_live(emulator, secret_value(kubectl, namespace, "shared"), "the first project's key works")
        watch.assert_never_held_a_dead_key()
        duplicate = condition(get(kubectl, "openaiproject", second))
        assert (duplicate["status"], duplicate["reason"]) == ("False", "DuplicateProjectId")
        assert condition(get(kubectl, "openaiproject", first))["status"] == "True"
    finally:
        kubectl("delete", "openaiproject", second, "--timeout=60s", check=False)
        kubectl("delete", "openaikey", "shared", "-n", namespace, "--timeout=60s", check=False)
        kubectl("delete", "openaiproject", first, "--wait=false", check=False)


def test_a_service_account_of_another_operator_instance_is_never_swept(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    project_id = project_id_of(kubectl, project)
    apply(kubectl, key_manifest("app", namespace, project))
    ours = wait_ready(kubectl, "openaikey", "app", "-n", namespace)["status"]["serviceAccountId"]
    foreign = admin(emulator, "POST", f"/organization/projects/{project_id}/service_accounts",
                    json={"name": f"k8s.otherinst.{namespace}.app.r1"}).json()["id"]
    with secret_watch(kube, emulator, namespace, "app") as watch:
        wait_inventory_passes(emulator, project_id, 2)
        assert foreign in account_ids(emulator, project_id), "the sweep revoked another instance's credential"
        assert ours in account_ids(emulator, project_id)
    watch.assert_never_held_a_dead_key()
    kubectl("delete", "openaikey", "app", "-n", namespace, "--timeout=60s")
    assert ours not in account_ids(emulator, project_id)
    assert foreign in account_ids(emulator, project_id), "the finalizer revoked another instance's credential"
    wait_inventory_passes(emulator, project_id, 2)
    assert foreign in account_ids(emulator, project_id)


def test_a_key_in_a_namespace_that_is_not_allowed_makes_no_admin_api_call(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, namespace: str
) -> None:
    """Refused, then deleted: not one call on the project's service accounts or keys in between (the
    inventory is slowed down so that every such call would be the key's)."""
    operator_factory.env["OPENAI_OPERATOR_INVENTORY_INTERVAL"] = "10m"
    operator_factory.start()
    name = f"p-{secrets.token_hex(3)}"
    apply(kubectl, project_manifest(name, keyPolicy={"allowedNamespaces": {"names": [f"else-{namespace}"]}}))
    try:
        project_id = project_id_of(kubectl, name)
        counters = [ApiCounter(emulator, f"/v1/organization/projects/{project_id}/{what}*")
                    for what in ("service_accounts", "api_keys")]
        apply(kubectl, key_manifest("outsider", namespace, name))
        wait_condition(kubectl, namespace, "openaikey", "outsider", status="False", reason="NamespaceNotAllowed")
        kubectl("delete", "openaikey", "outsider", "-n", namespace, "--timeout=60s")
        assert [c.count() for c in counters] == [0, 0], "Admin API calls for a key that may hold no credential"
    finally:
        kubectl("delete", "openaiproject", name, "--wait=false", check=False)


def test_a_forged_status_does_not_make_the_finalizer_revoke_another_keys_credential(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    project_id = project_id_of(kubectl, project)
    apply(kubectl, key_manifest("forger", namespace, project))
    apply(kubectl, key_manifest("victim", namespace, project))
    wait_ready(kubectl, "openaikey", "forger", "-n", namespace)
    victim = wait_ready(kubectl, "openaikey", "victim", "-n", namespace)["status"]
    kubectl("patch", "openaikey", "forger", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"serviceAccountId": victim["serviceAccountId"]}}))
    assert key_status(kubectl, namespace, "forger")["serviceAccountId"] == victim["serviceAccountId"]
    with secret_watch(kube, emulator, namespace, "victim") as watch:
        kubectl("delete", "openaikey", "forger", "-n", namespace, "--timeout=60s")
        assert victim["serviceAccountId"] in account_ids(emulator, project_id), \
            "deleting the forger revoked the victim's credential"
        assert_live(emulator, secret_value(kubectl, namespace, "victim"), "the victim's key works")
    watch.assert_never_held_a_dead_key()
    assert condition(get(kubectl, "openaikey", "victim", "-n", namespace))["status"] == "True"


# --- 5. policy --------------------------------------------------------------------------------------


def test_quotas_hold_when_keys_arrive_together_and_a_schedule_obeys_the_longest_interval(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str
) -> None:
    quota, longest = f"p-{secrets.token_hex(3)}", f"p-{secrets.token_hex(3)}"
    allowed = {"names": [namespace]}
    names = [f"q{i}" for i in range(6)]
    try:
        apply(kubectl, project_manifest(quota, keyPolicy={"allowedNamespaces": allowed, "maxKeys": 2}))
        apply(kubectl, project_manifest(longest, keyPolicy={"allowedNamespaces": allowed,
                                                            "maxRotationInterval": "24h"}))
        project_id = project_id_of(kubectl, quota)
        project_id_of(kubectl, longest)
        apply(kubectl, {"apiVersion": "v1", "kind": "List",
                        "items": [key_manifest(n, namespace, quota) for n in names]})
        apply(kubectl, {"apiVersion": "v1", "kind": "List", "items": [
            key_manifest("weekly", namespace, longest, rotation={"schedule": "0 3 * * 1"}),
            key_manifest("six-hourly", namespace, longest, rotation={"schedule": "0 */6 * * *"}),
        ]})

        def decided() -> dict[str, str] | None:
            reasons = {}
            for n in names:
                c = condition(get(kubectl, "openaikey", n, "-n", namespace))
                if not c or (c["status"] != "True" and c.get("reason") != "KeyQuotaExceeded"):
                    return None
                reasons[n] = "Issued" if c["status"] == "True" else c["reason"]
            return reasons

        reasons = wait_for(decided, timeout=90, what="every key to be issued or refused by the quota")
        holders = sum(len(live_accounts_for(emulator, project_id, namespace, n)) for n in names)
        assert sorted(reasons.values()).count("KeyQuotaExceeded") == 4, reasons
        assert holders == 2, f"{holders} keys hold credentials in a project that allows 2"
        wait_inventory_passes(emulator, project_id, 1)
        assert sum(len(live_accounts_for(emulator, project_id, namespace, n)) for n in names) == 2
        for n in (n for n, reason in reasons.items() if reason == "Issued"):
            assert_live(emulator, secret_value(kubectl, namespace, n), f"{n}'s Secret holds a working key")

        wait_condition(kubectl, namespace, "openaikey", "weekly", status="False", reason="RotationIntervalTooLong")
        wait_ready(kubectl, "openaikey", "six-hourly", "-n", namespace)
        longest_id = get(kubectl, "openaiproject", longest)["status"]["projectId"]
        assert live_accounts_for(emulator, longest_id, namespace, "weekly") == []
    finally:
        kubectl("delete", "openaikey", *names, "weekly", "six-hourly", "-n", namespace, "--timeout=60s",
                "--ignore-not-found", check=False)
        kubectl("delete", "openaiproject", quota, longest, "--wait=false", check=False)


# --- 6. refusal revokes -----------------------------------------------------------------------------


def test_a_namespace_removed_from_the_policy_loses_its_credential_after_the_grace_period(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    project_id = project_id_of(kubectl, project)
    apply(kubectl, key_manifest("evicted", namespace, project, rotation={"every": "720h", "gracePeriod": "5s"}))
    sa = wait_ready(kubectl, "openaikey", "evicted", "-n", namespace)["status"]["serviceAccountId"]
    value = secret_value(kubectl, namespace, "evicted")
    with secret_watch(kube, emulator, namespace, "evicted") as watch:
        apply(kubectl, project_manifest(project, keyPolicy={"allowedNamespaces": {"names": [f"else-{namespace}"]}}))
        wait_condition(kubectl, namespace, "openaikey", "evicted", status="False", reason="NamespaceNotAllowed")
        announced = events_for(kubectl, namespace, "evicted", "NamespaceNotAllowed")
        assert announced, "the refusal is announced with an Event"
        assert {e["type"] for e in announced} == {"Warning"}
        wait_for(lambda: sa not in account_ids(emulator, project_id)
                 and secret_value(kubectl, namespace, "evicted") is None, timeout=60,
                 what="the refused key's credential to be revoked and its Secret removed")
        assert_dead(emulator, value, "the refused key's credential is revoked")
        # The watch polls on its own clock: let it see the Secret gone before it stops.
        wait_for(lambda: any(o.value is None for o in watch.observations), timeout=20,
                 what="the workload's watch to see the Secret gone")
    watch.assert_never_held_a_dead_key()


# --- 7. inputs that crashed handlers ----------------------------------------------------------------


def test_inputs_that_crashed_handlers_give_invalid_spec_without_an_admin_api_call(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, namespace: str
) -> None:
    """A time zone that names a folder of the tz database, and a revoke token longer than status
    may hold: Ready=False/InvalidSpec naming the field (or refused at apply), no call on the
    project's service accounts or keys, and deletion completes."""
    operator_factory.env["OPENAI_OPERATOR_INVENTORY_INTERVAL"] = "10m"
    operator_factory.start()
    name = f"p-{secrets.token_hex(3)}"
    apply(kubectl, project_manifest(name, keyPolicy={"allowedNamespaces": {"names": [namespace]}}))
    try:
        project_id = project_id_of(kubectl, name)
        counters = [ApiCounter(emulator, f"/v1/organization/projects/{project_id}/{what}*")
                    for what in ("service_accounts", "api_keys")]
        zoned = key_manifest("zoned", namespace, name, rotation={"schedule": "0 3 * * *", "timeZone": "America"})
        token = key_manifest("long-token", namespace, name)
        token["metadata"]["annotations"] = {REVOKE: "t" * 300}
        created = []
        for manifest, field in ((zoned, "timeZone"), (token, REVOKE)):
            result = kubectl("apply", "-f", "-", input=json.dumps(manifest), check=False)
            if result.returncode != 0:
                assert field in result.stderr, result.stderr
                continue
            created.append(manifest["metadata"]["name"])
            key = wait_condition(kubectl, namespace, "openaikey", manifest["metadata"]["name"], status="False",
                                 reason="InvalidSpec")
            assert field in condition(key)["message"]
        assert "long-token" in created, "an annotation cannot be refused at apply by the CRD"
        for key_name in created:
            kubectl("delete", "openaikey", key_name, "-n", namespace, "--timeout=60s")
        assert [c.count() for c in counters] == [0, 0], "Admin API calls for keys whose spec is invalid"
    finally:
        kubectl("delete", "openaiproject", name, "--wait=false", check=False)


# --- 10. Events -------------------------------------------------------------------------------------


def test_events_name_service_account_and_key_ids_verbatim(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    project_id_of(kubectl, project)
    apply(kubectl, key_manifest("named", namespace, project))
    status = wait_ready(kubectl, "openaikey", "named", "-n", namespace)["status"]
    messages = wait_for(lambda: [e["message"] for e in events_for(kubectl, namespace, "named")], timeout=30,
                        what="the key's Events")
    assert any(status["serviceAccountId"] in m for m in messages), messages
    assert any(status["keyId"] in m for m in messages), messages
    assert not any("[REDACTED]" in m for m in messages), messages
