"""Rotation without downtime, drift repair and orphan cleanup, on the real test bed."""

from __future__ import annotations

import json
import random
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import Emulator, OperatorProcess
from scenario import (
    apply,
    condition,
    get,
    key_manifest,
    key_status,
    live_accounts_for,
    operator_instance_id,
    secret_value,
    wait_ready,
    wait_revision,
)
from support import wait_for
from testbed import KubeCluster, Kubectl
from workload import Workload

ROTATE = "openai.operator.dev/rotate"
REVOKE = "openai.operator.dev/revoke"






def admin(emulator: Emulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{emulator.base_url}{path}", timeout=10,
                         headers={"Authorization": f"Bearer {emulator.admin_key}"}, **kwargs)


def test_ten_rotations_of_every_kind_without_a_failed_request(
    kubectl: Kubectl, kube: KubeCluster, emulator: Emulator, operator: OperatorProcess, namespace: str,
    project: str, tmp_path: Path,
) -> None:
    """A workload re-reading its mounted Secret calls the data plane every 50 ms through scheduled,
    manual and Secret-deleted rotations: no call fails, and every old key dies after its grace."""
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    apply(kubectl, key_manifest("app", namespace, project, rotation={"every": "12s", "gracePeriod": "3s"}))
    wait_ready(kubectl, "openaikey", "app", "-n", namespace)
    workload = Workload(kube.kubeconfig, namespace, "app", emulator.base_url, tmp_path / "mount")
    workload.start()
    reasons: list[str] = []
    try:
        kinds = ["ManuallyTriggered", "DestinationDrift", "Scheduled"]
        while len(reasons) < 10 or not all(reasons.count(k) >= 2 for k in kinds):
            assert len(reasons) < 20, f"rotations did not cover every kind: {reasons}"
            revision = key_status(kubectl, namespace, "app")["revision"]
            want = next(k for k in kinds if reasons.count(k) == min(reasons.count(k) for k in kinds))
            if want == "ManuallyTriggered":
                kubectl("annotate", "openaikey", "app", "-n", namespace, f"{ROTATE}={secrets.token_hex(4)}",
                        "--overwrite")
            elif want == "DestinationDrift":
                kubectl("delete", "secret", "app", "-n", namespace, "--ignore-not-found")
            status = wait_revision(kubectl, namespace, "app", revision, timeout=60)
            wait_for(lambda: secret_value(kubectl, namespace, "app"), timeout=60, what="the Secret to be delivered")
            rotated = condition({"status": status}, "Rotating")
            reasons.append(rotated["message"].rsplit("(", 1)[-1].rstrip(")"))
        final = wait_for(lambda: (s := key_status(kubectl, namespace, "app")) and not s.get("previous") and s,
                         timeout=30, what="every previous credential to be revoked after its grace")
        time.sleep(0.5)  # let the workload make calls with the final key only
    finally:
        workload.stop()
    print(f"\nrotations: {reasons}; data-plane calls ok={workload.ok_calls} "  # noqa: T201
          f"failed={len(workload.failures)}; keys used={len(workload.keys_seen)}")
    assert workload.failures == []
    assert workload.ok_calls > 200
    assert len(workload.keys_seen) >= 11
    current = secret_value(kubectl, namespace, "app")
    assert workload.keys_seen[-1] == current
    for old in workload.keys_seen[:-1]:
        assert emulator.models_status(old) == 401, "an old key still works after its grace period"
    assert [a["id"] for a in live_accounts_for(emulator, project_id, namespace, "app")] == [
        final["serviceAccountId"]]
    assert final["lastRotatedAt"]
    assert final["nextRotationAt"] > final["lastRotatedAt"]


def test_rotating_latch_and_immediate_revoke_on_leak(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """While a rotation is in flight Rotating=True and a second trigger starts no second one; the
    revoke annotation kills the old key as soon as the new one is stored."""
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    apply(kubectl, key_manifest("leaky", namespace, project))
    first = wait_ready(kubectl, "openaikey", "leaky", "-n", namespace)["status"]
    old = secret_value(kubectl, namespace, "leaky")
    assert old is not None
    emulator.add_fault({"route": "/v1/organization/projects/*/service_accounts", "method": "POST",
                        "latency_ms": 4000, "times": 1})
    try:
        kubectl("annotate", "openaikey", "leaky", "-n", namespace, f"{REVOKE}=incident-1")
        wait_for(lambda: condition(get(kubectl, "openaikey", "leaky", "-n", namespace), "Rotating")
                 .get("status") == "True", timeout=30, what="Rotating=True")
        rotating = condition(get(kubectl, "openaikey", "leaky", "-n", namespace), "Rotating")
        assert rotating["reason"] == "Compromised"
        kubectl("annotate", "openaikey", "leaky", "-n", namespace, f"{ROTATE}=also-now")
        # The rotate annotation set during the leak response is a new value: exactly one more
        # rotation after the one in flight, never a concurrent one.
        final = wait_for(lambda: (s := key_status(kubectl, namespace, "leaky")).get("rotateToken") == "also-now"
                         and s.get("revokeToken") == "incident-1" and s, timeout=60, what="both triggers handled")
    finally:
        emulator.clear_faults()
    assert final["revision"] == first["revision"] + 2
    assert emulator.models_status(old) == 401, "the leaked key is revoked at once"
    previous = [p["serviceAccountId"] for p in final["previous"]]
    assert first["serviceAccountId"] not in previous, "the leaked credential got no grace period"
    live = [a["id"] for a in live_accounts_for(emulator, project_id, namespace, "leaky")]
    assert first["serviceAccountId"] not in live
    assert sorted(live) == sorted([final["serviceAccountId"], *previous])
    new = secret_value(kubectl, namespace, "leaky")
    assert new is not None
    assert emulator.models_status(new) == 200
    events = get(kubectl, "events", "-n", namespace, "--field-selector", "involvedObject.name=leaky")["items"]
    assert any(e["reason"] == "Compromised" for e in events)
    time.sleep(3)  # more than one resync interval: nothing else may happen
    assert key_status(kubectl, namespace, "leaky")["revision"] == final["revision"]


def test_failed_rotation_keeps_the_key_and_backs_off(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """Service-account creation fails: the current key stays Ready and working, failures are recorded,
    retries back off exponentially, and the first success resets the count."""
    wait_ready(kubectl, "openaiproject", project)
    apply(kubectl, key_manifest("stubborn", namespace, project))
    before = wait_ready(kubectl, "openaikey", "stubborn", "-n", namespace)["status"]
    current = secret_value(kubectl, namespace, "stubborn")
    emulator.reset_calls()
    emulator.add_fault({"route": "/v1/organization/projects/*/service_accounts", "method": "POST",
                        "error_rate": 1.0, "error_status": 500})
    failing_since = time.monotonic()
    try:
        kubectl("annotate", "openaikey", "stubborn", "-n", namespace, f"{ROTATE}=try")
        wait_for(lambda: key_status(kubectl, namespace, "stubborn").get("failedAttempts", 0) >= 3, timeout=60,
                 what="three failed attempts")
        time.sleep(12)  # observe the retry rate
        elapsed = time.monotonic() - failing_since
        status = key_status(kubectl, namespace, "stubborn")
        key = get(kubectl, "openaikey", "stubborn", "-n", namespace)
        assert condition(key)["status"] == "True", "the current key stays Ready"
        assert status["lastFailureTime"]
        assert status["keyId"] == before["keyId"]
        assert emulator.models_status(current or "") == 200
        creates = sum(c["count"] for c in emulator.admin_calls()
                      if c["method"] == "POST" and c["route"].endswith("/service_accounts"))
        print(f"\nservice-account creates while failing: {creates} in {elapsed:.0f}s; "  # noqa: T201
              f"failedAttempts={status['failedAttempts']}")
        assert creates <= 8, f"{creates} attempts: no exponential backoff"
    finally:
        emulator.clear_faults()
    after = wait_revision(kubectl, namespace, "stubborn", before["revision"], timeout=120)
    assert after["failedAttempts"] == 0
    assert "lastFailureTime" not in after or after["lastFailureTime"] is None


def test_upstream_deletion_and_hand_edited_secret_are_repaired(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    apply(kubectl, key_manifest("drifty", namespace, project))
    status = wait_ready(kubectl, "openaikey", "drifty", "-n", namespace)["status"]

    assert admin(emulator, "DELETE", f"/organization/projects/{project_id}/service_accounts/"
                                     f"{status['serviceAccountId']}").status_code == 200
    repaired = wait_revision(kubectl, namespace, "drifty", status["revision"], timeout=30)
    assert condition({"status": repaired}, "Rotating")["message"].endswith("(UpstreamKeyMissing)")
    value = secret_value(kubectl, namespace, "drifty")
    assert value is not None
    assert emulator.models_status(value) == 200

    kubectl("patch", "secret", "drifty", "-n", namespace, "--type=merge",
            "-p", json.dumps({"stringData": {"OPENAI_API_KEY": "edited-by-hand"}}))
    again = wait_revision(kubectl, namespace, "drifty", repaired["revision"], timeout=30)
    assert condition({"status": again}, "Rotating")["message"].endswith("(DestinationDrift)")
    restored = secret_value(kubectl, namespace, "drifty")
    assert restored is not None
    assert restored != "edited-by-hand"
    assert emulator.models_status(restored) == 200


def test_orphaned_operator_service_accounts_are_revoked(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    apply(kubectl, key_manifest("kept", namespace, project))
    wait_ready(kubectl, "openaikey", "kept", "-n", namespace)
    orphan = admin(emulator, "POST", f"/organization/projects/{project_id}/service_accounts",
                   json={"name": f"k8s.{operator_instance_id(kubectl)}.{namespace}.ghost.r1"}).json()
    theirs = admin(emulator, "POST", f"/organization/projects/{project_id}/service_accounts",
                   json={"name": f"k8s.othercluster.{namespace}.ghost.r1"}).json()
    foreign = admin(emulator, "POST", f"/organization/projects/{project_id}/service_accounts",
                    json={"name": "someone-elses-robot"}).json()
    wait_for(lambda: not any(a["id"] == orphan["id"] for a in emulator.project(project_id)["service_accounts"]),
             timeout=30, what="the orphan to be revoked by the inventory")
    names = [a["name"] for a in emulator.project(project_id)["service_accounts"]]
    assert foreign["name"] in names, "service accounts the operator did not name are left alone"
    assert theirs["name"] in names, "another installation's service accounts are left alone"
    assert len(live_accounts_for(emulator, project_id, namespace, "kept")) == 1
    events = get(kubectl, "events", "--field-selector", f"involvedObject.name={project},reason=OrphanRevoked",
                 "-A")["items"]
    assert len(events) == 1
    metrics = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).text
    assert "openai_operator_orphans_revoked_total 1.0" in metrics


def test_restart_targets_roll_once_per_credential(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    wait_ready(kubectl, "openaiproject", project)
    kubectl("create", "deployment", "web", "-n", namespace, "--image=registry.invalid/web:1")
    apply(kubectl, key_manifest("rolled", namespace, project, rotation={
        "every": "720h", "restartTargets": [{"kind": "Deployment", "name": "web"}]}))
    first = wait_ready(kubectl, "openaikey", "rolled", "-n", namespace)["status"]

    def template_annotation() -> str | None:
        deployment = get(kubectl, "deployment", "web", "-n", namespace)
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        return annotations.get("openai.operator.dev/key.rolled")  # type: ignore[no-any-return]

    wait_for(lambda: template_annotation() == f"r{first['revision']}", timeout=30, what="the first rollout")
    generation = get(kubectl, "deployment", "web", "-n", namespace)["metadata"]["generation"]
    kubectl("annotate", "openaikey", "rolled", "-n", namespace, f"{ROTATE}=1")
    second = wait_revision(kubectl, namespace, "rolled", first["revision"])
    wait_for(lambda: template_annotation() == f"r{second['revision']}", timeout=30, what="the second rollout")
    assert get(kubectl, "deployment", "web", "-n", namespace)["metadata"]["generation"] == generation + 1

    operator.stop()
    operator.start()
    time.sleep(6)  # the restarted operator resumes and resyncs several times
    assert get(kubectl, "deployment", "web", "-n", namespace)["metadata"]["generation"] == generation + 1, \
        "an operator restart must not restart the workload again"
    assert key_status(kubectl, namespace, "rolled")["revision"] == second["revision"]


@pytest.mark.timeout(900)
def test_sigkill_at_random_points_during_rotations(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, project: str
) -> None:
    """20 SIGKILLs while three keys rotate: afterwards every key is Ready, only current and in-grace
    credentials exist, no orphan survives the inventory, and every Secret holds a working key."""
    project_id = wait_ready(kubectl, "openaiproject", project)["status"]["projectId"]
    names = ["c0", "c1", "c2"]
    for name in names:
        apply(kubectl, key_manifest(name, namespace, project, rotation={"every": "10s", "gracePeriod": "2s"}))
    for name in names:
        wait_ready(kubectl, "openaikey", name, "-n", namespace)
    chaos = random.Random(20261123)
    # Slow issuing down (creation and verification) so that kills land inside rotations.
    for route, method in (("/v1/organization/projects/*/service_accounts", "POST"), ("/v1/models", "GET")):
        emulator.add_fault({"route": route, "method": method, "seed": 5,
                            "latency": {"distribution": "uniform", "min_ms": 800, "max_ms": 2500}})
    try:
        for kill in range(20):
            operator.wait_live()
            name = chaos.choice(names)
            kubectl("annotate", "openaikey", name, "-n", namespace, f"{ROTATE}=k{kill}", "--overwrite")
            # Kill at a random point of the rotation: it is latched (Rotating=True) before the slowed
            # create and verify calls, which take 1.6-5 s together.
            wait_for(lambda n=name: condition(get(kubectl, "openaikey", n, "-n", namespace), "Rotating")
                     .get("status") == "True", timeout=60, what=f"{name} to start rotating")
            time.sleep(chaos.uniform(0.0, 3.0))
            operator.kill()
            operator.start()
    finally:
        emulator.clear_faults()
    for name in names:
        apply(kubectl, key_manifest(name, namespace, project, rotation={"every": "720h", "gracePeriod": "2s"}))

    def settled() -> bool:
        for name in names:
            key = get(kubectl, "openaikey", name, "-n", namespace)
            status = key.get("status", {})
            if condition(key).get("status") != "True" or condition(key, "Rotating").get("status") == "True":
                return False
            if status.get("previous") or key["metadata"]["annotations"].get(ROTATE) != status.get("rotateToken"):
                return False
        return True

    wait_for(settled, timeout=120, what="every key to settle: Ready, not rotating, grace periods over")
    time.sleep(4)  # one inventory interval after settling
    for name in names:
        status = key_status(kubectl, namespace, name)
        live = live_accounts_for(emulator, project_id, namespace, name)
        assert [a["id"] for a in live] == [status["serviceAccountId"]], f"{name}: {len(live)} live credentials"
        value = secret_value(kubectl, namespace, name)
        assert value is not None
        assert emulator.models_status(value) == 200
    revisions = {name: key_status(kubectl, namespace, name)["revision"] for name in names}
    events = get(kubectl, "events", "-n", namespace)["items"]
    interrupted = sum(1 for e in events if "interrupted run" in e.get("message", ""))
    resumed = sum(1 for e in events if "resuming the rotation in flight" in e.get("message", ""))
    print(f"\nafter 20 SIGKILLs: revisions {revisions}; operator runs {operator.runs}; "  # noqa: T201
          f"unrecorded service accounts cleaned {interrupted}; rotations resumed {resumed}")
    assert operator.runs == 21
    assert interrupted + resumed >= 3, "the kills should land inside rotations"


def test_the_rotate_annotation_acts_without_waiting_for_the_resync(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, namespace: str, project: str
) -> None:
    """With a five-minute resync, annotating the key still rotates it within seconds."""
    operator_factory.env["OPENAI_OPERATOR_KEY_RESYNC_INTERVAL"] = "5m"
    operator_factory.start()
    wait_ready(kubectl, "openaiproject", project)
    apply(kubectl, key_manifest("prompt", namespace, project))
    first = wait_ready(kubectl, "openaikey", "prompt", "-n", namespace)["status"]
    kubectl("annotate", "openaikey", "prompt", "-n", namespace, f"{ROTATE}=now")
    second = wait_revision(kubectl, namespace, "prompt", first["revision"], timeout=20)
    assert second["rotateToken"] == "now"
    kubectl("annotate", "openaikey", "prompt", "-n", namespace, "unrelated=1")
    time.sleep(2)
    assert key_status(kubectl, namespace, "prompt")["revision"] == second["revision"], \
        "an unrelated annotation does not rotate"
