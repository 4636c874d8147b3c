"""spec.budget mirrored to OpenAI on the real test bed: the hard spend limit of ``enforcement:
HardLimit`` (the emulator's data plane answers 429 past it) and the spend alerts of
``alertEmails``; the operator changes or removes only what it set itself."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from harness import Emulator, OperatorProcess
from scenario import apply, condition, get, key_manifest, project_manifest, secret_value, wait_ready
from support import wait_for
from testbed import Kubectl

PROJECT_RESYNC = 5  # the harness's OPENAI_OPERATOR_PROJECT_RESYNC_INTERVAL, in seconds
WAIT = 30 + 2 * PROJECT_RESYNC


def alerts_upstream(emulator: Emulator, project_id: str) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in emulator.admin("GET", f"/projects/{project_id}/spend_alerts",
                                      params={"limit": 100})["data"]}


def chat(emulator: Emulator, key: str) -> int:
    """Status of one chat completion with ``key`` through the official SDK (no retries)."""
    with openai.OpenAI(api_key=key, base_url=emulator.base_url, max_retries=0, timeout=10) as client:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError as error:
            return error.status_code
    return 200


def project_status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return get(kubectl, "openaiproject", name).get("status", {})  # type: ignore[no-any-return]


def wait_synced(kubectl: Kubectl, name: str, reason: str = "BudgetMirrored") -> dict[str, Any]:
    """Until BudgetSynced=True with ``reason`` for the object's current generation; the object."""
    def done() -> dict[str, Any] | None:
        obj = get(kubectl, "openaiproject", name)
        synced = condition(obj, "BudgetSynced")
        current = synced.get("observedGeneration") == obj.get("metadata", {}).get("generation")
        return obj if current and synced.get("status") == "True" and synced.get("reason") == reason else None
    return wait_for(done, timeout=WAIT, what=f"{name}: BudgetSynced=True/{reason}")


@pytest.fixture
def name(kubectl: Kubectl) -> Iterator[str]:
    """The name of an OpenAIProject the test creates (deleted afterwards)."""
    value = f"b-{secrets.token_hex(3)}"
    yield value
    kubectl("delete", "openaiproject", value, "--wait=false", check=False)


def test_hard_limit_stops_the_projects_keys_past_the_budget_and_removing_it_frees_them(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, namespace: str, name: str
) -> None:
    """(a) HardLimit sets OpenAI's limit; spend past it makes the data plane answer 429 to the
    project's key and status.spendLimit shows enforcing; (b) removing spec.budget removes the
    limit and the key works again."""
    policy = {"allowedNamespaces": {"names": [namespace]}}
    apply(kubectl, project_manifest(name, keyPolicy=policy, budget={"monthlyUSD": 2.5, "enforcement": "HardLimit"}))
    project_id = wait_ready(kubectl, "openaiproject", name)["status"]["projectId"]
    limit = wait_for(lambda: emulator.project(project_id)["spend_limit"], timeout=WAIT, what="the spend limit")
    assert (limit["threshold_amount"], limit["currency"], limit["interval"]) == (250, "USD", "month")
    status = wait_synced(kubectl, name)["status"]
    assert status["spendLimit"] == {"enforcement": "inactive", "monthlyUSD": 2.5, "managed": True}

    apply(kubectl, key_manifest("capped", namespace, name))
    wait_ready(kubectl, "openaikey", "capped", "-n", namespace)
    value = secret_value(kubectl, namespace, "capped")
    assert value is not None
    assert chat(emulator, value) == 200

    spent = httpx.post(f"{emulator.control}/spend", json={"project_id": project_id, "amount_usd": 3.0}, timeout=10)
    spent.raise_for_status()
    assert emulator.project(project_id)["spend_limit"]["enforcing"] is True
    assert chat(emulator, value) == 429
    enforcing = wait_for(lambda: (s := project_status(kubectl, name).get("spendLimit") or {})
                         .get("enforcement") == "enforcing" and s, timeout=WAIT,
                         what="status.spendLimit.enforcement=enforcing after a resync")
    assert enforcing["managed"] is True
    assert "enforcing" in condition(get(kubectl, "openaiproject", name), "BudgetSynced")["message"]

    apply(kubectl, project_manifest(name, keyPolicy=policy))
    wait_for(lambda: emulator.project(project_id)["spend_limit"] is None, timeout=WAIT,
             what="the operator's spend limit to be removed")
    assert "spendLimit" not in wait_synced(kubectl, name, "NotConfigured")["status"]
    assert chat(emulator, value) == 200
    events = get(kubectl, "events", "--field-selector", f"involvedObject.name={name}")["items"]
    assert {"SpendLimitSet", "SpendLimitRemoved"} <= {e["reason"] for e in events}
    kubectl("delete", "openaikey", "capped", "-n", namespace, "--timeout=60s")


def test_a_hand_set_limit_on_an_adopted_project_is_left_alone(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, name: str
) -> None:
    """(c) A limit someone set in the dashboard is shown in status but never removed while the spec
    asks for no HardLimit (enforcement Alert, then no budget at all)."""
    existing = emulator.admin("POST", "/projects", json={"name": "limited-by-hand"})
    emulator.admin("POST", f"/projects/{existing['id']}/spend_limit",
          json={"threshold_amount": 12_300, "currency": "USD", "interval": "month"})
    apply(kubectl, project_manifest(name, projectId=existing["id"], budget={"monthlyUSD": 50}))
    status = wait_synced(kubectl, name, "NotConfigured")["status"]
    assert status["spendLimit"] == {"enforcement": "inactive", "monthlyUSD": 123.0, "managed": False}
    assert "left alone" in condition(get(kubectl, "openaiproject", name), "BudgetSynced")["message"]

    apply(kubectl, project_manifest(name, projectId=existing["id"]))
    # BudgetSynced for the new generation: the pass that would have removed the limit has run.
    assert "spendLimit" not in wait_synced(kubectl, name, "NotConfigured")["status"]
    limit = emulator.project(existing["id"])["spend_limit"]
    assert limit is not None
    assert limit["threshold_amount"] == 12_300
    kubectl("delete", "openaiproject", name, "--timeout=60s")
    assert emulator.project(existing["id"])["spend_limit"]["threshold_amount"] == 12_300


def test_alert_emails_are_mirrored_to_spend_alerts_and_only_ours_are_changed(
    kubectl: Kubectl, emulator: Emulator, operator: OperatorProcess, name: str
) -> None:
    """(d) alertEmails create one OpenAI spend alert per threshold; edits update them in place;
    removing alertEmails deletes only the operator's alerts, never one made in the dashboard."""
    existing = emulator.admin("POST", "/projects", json={"name": "alerted"})
    project_id = existing["id"]
    theirs = emulator.admin("POST", f"/projects/{project_id}/spend_alerts", json={
        "threshold_amount": 700, "currency": "USD", "interval": "month",
        "notification_channel": {"type": "email", "recipients": ["owner@example.com"]}})
    budget = {"monthlyUSD": 40, "alertThresholds": [50, 100], "alertEmails": ["ops@example.com"]}
    apply(kubectl, project_manifest(name, projectId=project_id, budget=budget))
    status = wait_synced(kubectl, name)["status"]
    ours = {a["id"]: a["thresholdPercent"] for a in status["spendAlerts"]}
    assert sorted(ours.values()) == [50, 100]
    upstream = alerts_upstream(emulator, project_id)
    assert set(upstream) == {*ours, theirs["id"]}
    assert sorted(upstream[i]["threshold_amount"] for i in ours) == [2_000, 4_000]
    for alert_id in ours:
        assert upstream[alert_id]["notification_channel"]["recipients"] == ["ops@example.com"]
        assert upstream[alert_id]["notification_channel"]["type"] == "email"

    edited = {"monthlyUSD": 80, "alertThresholds": [50, 90], "alertEmails": ["ops@example.com", "fin@example.com"]}
    apply(kubectl, project_manifest(name, projectId=project_id, budget=edited))
    status = wait_for(lambda: (s := wait_synced(kubectl, name)["status"]) and
                      sorted(a["thresholdPercent"] for a in s["spendAlerts"]) == [50, 90] and s,
                      timeout=WAIT, what="the alerts to follow the edit")
    after = {a["id"]: a["thresholdPercent"] for a in status["spendAlerts"]}
    assert set(after) == set(ours), "the alerts were updated in place"
    upstream = alerts_upstream(emulator, project_id)
    assert sorted(upstream[i]["threshold_amount"] for i in after) == [4_000, 7_200]
    for alert_id in after:
        assert sorted(upstream[alert_id]["notification_channel"]["recipients"]) == ["fin@example.com",
                                                                                     "ops@example.com"]
    assert upstream[theirs["id"]]["threshold_amount"] == 700

    apply(kubectl, project_manifest(name, projectId=project_id, budget={"monthlyUSD": 80}))
    wait_for(lambda: set(alerts_upstream(emulator, project_id)) == {theirs["id"]}, timeout=WAIT,
             what="only the operator's alerts to be deleted")
    assert wait_synced(kubectl, name, "NotConfigured")["status"].get("spendAlerts", []) == []
    assert alerts_upstream(emulator, project_id)[theirs["id"]] == theirs
