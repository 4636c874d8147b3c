"""Spend against budget on the real test bed: spend made by real data-plane calls (the official SDK,
with the key from the Secret), read back by the operator's costs poll into status, printer columns,
Events and metrics; alerts once per period across restarts and failovers; a key revoked for budget,
re-issued next month or when the budget is raised.

These tests move the emulator's clock across a month boundary, so they get an emulator of their own
(the module-scoped ``emulator`` below overrides the session's).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from harness import Emulator, OperatorProcess, running_emulator
from scenario import (
    apply,
    condition,
    get,
    key_manifest,
    key_status,
    live_accounts_for,
    project_manifest,
    secret_value,
    start_peered,
    wait_ready,
    wait_revision,
)
from support import wait_for
from testbed import Kubectl

POLL = "2s"
"""The costs poll interval of these tests (the production default is 5m)."""
USD_PER_INPUT_CHAR = 2.50 / 1_000_000 / 4
"""What one prompt character costs on gpt-4o in the emulator (about four characters a token)."""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("spend-emulator")) as emulator:
        yield emulator


@pytest.fixture
def spend_operator(operator_factory: OperatorProcess) -> OperatorProcess:
    operator_factory.env["OPENAI_OPERATOR_SPEND_POLL_INTERVAL"] = POLL
    operator_factory.start()
    return operator_factory


# --- helpers --------------------------------------------------------------------------------------


def ledger(emulator: Emulator) -> dict[str, Any]:
    """The emulator's own record of this month's cost, by project and by API key (unrounded)."""
    return httpx.get(f"{emulator.control}/spend", timeout=10).json()  # type: ignore[no-any-return]


def spend(emulator: Emulator, api_key: str, usd: float) -> None:
    """Spend about ``usd`` through the data plane with ``api_key``, as a workload would (the SDK)."""
    client = openai.OpenAI(api_key=api_key, base_url=emulator.base_url, max_retries=0)
    left = usd
    while left > 0.001:
        chunk = min(left, 0.5)  # 200k tokens a call: well inside the body size and the TPM limit
        client.chat.completions.create(model="gpt-4o", max_tokens=16,
                                       messages=[{"role": "user", "content": "x" * int(chunk / USD_PER_INPUT_CHAR)}])
        left -= chunk


def events(kubectl: Kubectl, name: str, reason: str) -> list[dict[str, Any]]:
    found = get(kubectl, "events", "-A", "--field-selector", f"involvedObject.name={name},reason={reason}")
    return found.get("items", [])  # type: ignore[no-any-return]


def thresholds_announced(kubectl: Kubectl, name: str) -> list[str]:
    """The threshold of every BudgetThresholdCrossed Event on ``name`` (one entry per Event)."""
    found = []
    for event in events(kubectl, name, "BudgetThresholdCrossed"):
        message = event["message"]
        found.append(message.split(": the ", 1)[1].split(" %", 1)[0])
    return sorted(found, key=int)


def cents(value: float) -> int:
    return round(value * 100)


def wait_spend(kubectl: Kubectl, emulator: Emulator, project: str, project_id: str, timeout: float = 20,
               ) -> dict[str, Any]:
    """Until the project's status.spend shows the emulator's ledger for it, to the cent."""
    def shown() -> dict[str, Any] | None:
        expected = cents(ledger(emulator)["projects"].get(project_id, 0.0))
        status = get(kubectl, "openaiproject", project).get("status", {})
        got = status.get("spend", {}).get("monthToDateUSD")
        return status if got is not None and cents(got) == expected else None
    return wait_for(shown, timeout=timeout, what=f"{project}'s spend to match the emulator's ledger")


def budget_project(kubectl: Kubectl, namespace: str, **budget: Any) -> tuple[str, str]:
    name = f"p-{secrets.token_hex(3)}"
    spec: dict[str, Any] = {"keyPolicy": {"allowedNamespaces": {"names": [namespace]}}}
    if budget:
        spec["budget"] = budget
    apply(kubectl, project_manifest(name, **spec))
    project_id = wait_ready(kubectl, "openaiproject", name)["status"]["projectId"]
    return name, project_id


def issued_key(kubectl: Kubectl, namespace: str, project: str, name: str, **spec: Any) -> str:
    apply(kubectl, key_manifest(name, namespace, project, **spec))
    wait_ready(kubectl, "openaikey", name, "-n", namespace)
    value = secret_value(kubectl, namespace, name)
    assert value is not None
    return value


# --- tests ----------------------------------------------------------------------------------------


def test_data_plane_spend_shows_in_status_and_kubectl_get_to_the_cent(
    kubectl: Kubectl, emulator: Emulator, spend_operator: OperatorProcess, namespace: str
) -> None:
    """A workload spends with the key from its Secret; within a poll the project's and the key's status
    show the emulator's ledger to the cent, and ``kubectl get`` shows SPEND, BUDGET and USED."""
    project, project_id = budget_project(kubectl, namespace, monthlyUSD=10)
    api_key = issued_key(kubectl, namespace, project, "spender")
    spend(emulator, api_key, 1.2)
    status = wait_spend(kubectl, emulator, project, project_id)
    key_id = key_status(kubectl, namespace, "spender")["keyId"]

    def key_shown() -> dict[str, Any] | None:
        expected = cents(ledger(emulator)["api_keys"][key_id])
        got = key_status(kubectl, namespace, "spender").get("spend", {})
        return got if got.get("monthToDateUSD") is not None and cents(got["monthToDateUSD"]) == expected else None
    key_spend = wait_for(key_shown, timeout=20, what="the key's spend to match the emulator's ledger")

    spent = status["spend"]
    assert cents(spent["monthToDateUSD"]) == cents(ledger(emulator)["projects"][project_id])
    assert spent["percentOfBudget"] == pytest.approx(spent["monthToDateUSD"] / 10 * 100, abs=0.05)
    assert spent["periodStart"].endswith("-01T00:00:00Z")
    assert spent["asOf"].endswith("T00:00:00Z"), "asOf is the start of a daily bucket, not a claim of real time"
    assert spent["forecastUSD"] >= spent["monthToDateUSD"]
    assert key_spend["periodStart"] == spent["periodStart"]

    table = kubectl("get", "openaiproject", project).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "PROJECT-ID", "READY", "SPEND", "BUDGET", "USED"]
    assert row.split()[3] == f"{spent['monthToDateUSD']:g}"
    assert row.split()[4] == "10"
    key_table = kubectl("get", "openaikey", "spender", "-n", namespace).stdout
    assert "SPEND" in key_table.splitlines()[0]
    assert f"{key_spend['monthToDateUSD']:g}" in key_table.splitlines()[1]


def test_thresholds_fire_once_per_period_across_a_restart_and_a_failover(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, namespace: str
) -> None:
    """50/80/100 % each fire exactly one Event, across an operator crash and restart and a failover
    between two peered replicas; BudgetExceeded turns True at 100 %."""
    operator_factory.env["OPENAI_OPERATOR_SPEND_POLL_INTERVAL"] = POLL
    operator_factory.start()
    project, project_id = budget_project(kubectl, namespace, monthlyUSD=2)
    api_key = issued_key(kubectl, namespace, project, "alerts")

    spend(emulator, api_key, 1.1)  # 55 %
    wait_for(lambda: thresholds_announced(kubectl, project) == ["50"], timeout=30, what="the 50 % alert")

    # A crash and restart: the new process polls the same spend and must not announce 50 % again.
    operator_factory.kill()
    operator_factory.start()
    polled = wait_for(lambda: _polls(operator_factory), timeout=30, what="the restarted operator's first poll")
    wait_for(lambda: _polls(operator_factory) > polled, timeout=30, what="a second poll")
    assert thresholds_announced(kubectl, project) == ["50"]
    spend(emulator, api_key, 0.5)  # 80 %
    wait_for(lambda: thresholds_announced(kubectl, project) == ["50", "80"], timeout=30, what="the 80 % alert")
    operator_factory.stop()

    # A failover: two peered replicas; the active one goes away and the standby takes over.
    _, standby = start_peered(kubectl, operator_factory)
    try:
        wait_for(lambda: _polls(operator_factory), timeout=30, what="the active replica's first poll")
        assert _polls(standby) == 0, "the standby does not poll"
        operator_factory.stop()
        spend(emulator, api_key, 0.5)  # past 100 %
        wait_for(lambda: condition(get(kubectl, "openaiproject", project), "BudgetExceeded").get("status") == "True",
                 timeout=60, what="the standby to take over and see the budget exceeded")
        wait_for(lambda: thresholds_announced(kubectl, project) == ["50", "80", "100"], timeout=30,
                 what="the 100 % alert")
        wait_spend(kubectl, emulator, project, project_id)
        status = get(kubectl, "openaiproject", project)["status"]
        assert status["alertsFired"] == [50, 80, 100]
        polled = _polls(standby)
        wait_for(lambda: _polls(standby) > polled, timeout=30, what="another poll by the new active replica")
        assert thresholds_announced(kubectl, project) == ["50", "80", "100"], "no alert fired twice"
    finally:
        standby.stop()


def test_a_key_rotated_twice_shows_its_whole_months_spend(
    kubectl: Kubectl, emulator: Emulator, spend_operator: OperatorProcess, namespace: str
) -> None:
    """Spend made with r1, r2 and r3 all counts toward the key, also after r1 and r2 are revoked."""
    project, project_id = budget_project(kubectl, namespace)
    api_key = issued_key(kubectl, namespace, project, "rotated", rotation={"every": "720h", "gracePeriod": "1s"})
    key_ids = []
    for revision in (1, 2, 3):
        key_ids.append(key_status(kubectl, namespace, "rotated")["keyId"])
        spend(emulator, api_key, 0.3)
        if revision < 3:
            kubectl("annotate", "--overwrite", "openaikey", "rotated", "-n", namespace,
                    f"openai.operator.dev/rotate=r{revision}")
            wait_revision(kubectl, namespace, "rotated", above=revision)
            api_key = wait_for(lambda a=api_key: (v := secret_value(kubectl, namespace, "rotated")) != a and v,
                               timeout=20, what="the rotated key in the Secret")
    wait_for(lambda: len(live_accounts_for(emulator, project_id, namespace, "rotated")) == 1, timeout=30,
             what="r1 and r2 to be revoked")
    assert len(set(key_ids)) == 3

    def whole_month() -> dict[str, Any] | None:
        expected = cents(sum(ledger(emulator)["api_keys"].get(k, 0.0) for k in key_ids))
        got = key_status(kubectl, namespace, "rotated").get("spend", {})
        return got if got.get("monthToDateUSD") is not None and cents(got["monthToDateUSD"]) == expected else None
    spent = wait_for(whole_month, timeout=20, what="the key's spend over all three credentials")
    assert cents(spent["monthToDateUSD"]) == cents(ledger(emulator)["projects"][project_id])
    assert spent["monthToDateUSD"] >= 0.85
    assert {r["keyId"] for r in spent["retiredCredentials"]} == set(key_ids[:2])


def _wait_revoked_for_budget(kubectl: Kubectl, emulator: Emulator, namespace: str, name: str, project_id: str,
                             ) -> dict[str, Any]:
    def held() -> dict[str, Any] | None:
        key = get(kubectl, "openaikey", name, "-n", namespace)
        ok = condition(key, "BudgetExceeded").get("status") == "True" and \
            condition(key).get("reason") == "BudgetExceeded" and key["status"].get("keyId") is None
        return key if ok else None
    key = wait_for(held, timeout=30, what=f"{name} to be revoked for its budget")
    assert condition(key)["status"] == "False"
    assert get(kubectl, "secret", name, "-n", namespace) == {}, "the dead key left every destination"
    assert live_accounts_for(emulator, project_id, namespace, name) == []
    assert events(kubectl, name, "BudgetExceeded"), "an Event says why the key was revoked"
    return key


def test_a_key_revoked_for_budget_stays_revoked_then_a_new_month_resets_spend_alerts_and_reissues_it(
    kubectl: Kubectl, emulator: Emulator, spend_operator: OperatorProcess, namespace: str
) -> None:
    """onExceeded Revoke: the key is revoked and removed from its Secret when its spend reaches its
    budget, stays without a credential, and a new month (on OpenAI's clock) resets the project's and
    the key's spend and alerts and issues a fresh, working key."""
    project, project_id = budget_project(kubectl, namespace, monthlyUSD=1)
    api_key = issued_key(kubectl, namespace, project, "capped",
                         budget={"monthlyUSD": 0.5, "onExceeded": "Revoke"})
    spend(emulator, api_key, 0.6)
    held = _wait_revoked_for_budget(kubectl, emulator, namespace, "capped", project_id)
    assert emulator.models_status(api_key) == 401
    assert held["status"]["alertsFired"] == [50, 80, 100]
    revision = held["status"]["revision"]
    wait_spend(kubectl, emulator, project, project_id)
    assert get(kubectl, "openaiproject", project)["status"]["alertsFired"] == [50]

    # It stays revoked: several polls later there is still no credential.
    polled = _polls(spend_operator)  # a positive signal: two more polls have happened since
    wait_for(lambda: _polls(spend_operator) >= polled + 2, timeout=30, what="two more costs polls")
    assert key_status(kubectl, namespace, "capped").get("keyId") is None
    assert live_accounts_for(emulator, project_id, namespace, "capped") == []

    httpx.post(f"{emulator.control}/clock", json={"to": "next_month"}, timeout=10).raise_for_status()
    wait_revision(kubectl, namespace, "capped", above=revision, timeout=60)
    fresh = secret_value(kubectl, namespace, "capped")
    assert fresh is not None
    assert fresh != api_key
    assert emulator.models_status(fresh) == 200

    def reset(kind: str, *args: str) -> dict[str, Any] | None:
        status = get(kubectl, kind, *args).get("status", {})
        spent = status.get("spend", {})
        return status if spent.get("monthToDateUSD") == 0 and not status.get("alertsFired") else None
    project_status = wait_for(lambda: reset("openaiproject", project), timeout=20, what="the project's reset")
    key_after = wait_for(lambda: reset("openaikey", "capped", "-n", namespace), timeout=20, what="the key's reset")
    assert project_status["spend"]["periodStart"] > held["status"]["spend"]["periodStart"]
    assert key_after["spend"]["periodStart"] == project_status["spend"]["periodStart"]
    assert condition(get(kubectl, "openaikey", "capped", "-n", namespace), "BudgetExceeded")["status"] == "False"


def _polls(operator: OperatorProcess, result: str = "ok") -> int:
    """Costs polls the operator made so far (0 while its metrics endpoint is not up yet)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0
    for line in text.splitlines():
        if line.startswith(f'openai_operator_spend_polls_total{{result="{result}"}}'):
            return int(float(line.split()[-1]))
    return 0


def test_raising_the_budget_reissues_a_key_revoked_for_budget(
    kubectl: Kubectl, emulator: Emulator, spend_operator: OperatorProcess, namespace: str
) -> None:
    project, project_id = budget_project(kubectl, namespace)
    api_key = issued_key(kubectl, namespace, project, "raised", budget={"monthlyUSD": 0.3, "onExceeded": "Revoke"})
    spend(emulator, api_key, 0.4)
    held = _wait_revoked_for_budget(kubectl, emulator, namespace, "raised", project_id)
    kubectl("patch", "openaikey", "raised", "-n", namespace, "--type=merge",
            "-p", '{"spec": {"budget": {"monthlyUSD": 5, "onExceeded": "Revoke"}}}')
    wait_revision(kubectl, namespace, "raised", above=held["status"]["revision"], timeout=30)
    fresh = secret_value(kubectl, namespace, "raised")
    assert fresh is not None
    assert emulator.models_status(fresh) == 200
    status = key_status(kubectl, namespace, "raised")
    assert cents(status["spend"]["monthToDateUSD"]) == cents(ledger(emulator)["projects"][project_id]), \
        "the revoked credential's spend still counts"


def test_a_failed_costs_poll_keeps_the_last_values_and_says_so(
    kubectl: Kubectl, emulator: Emulator, spend_operator: OperatorProcess, namespace: str
) -> None:
    project, project_id = budget_project(kubectl, namespace, monthlyUSD=10)
    api_key = issued_key(kubectl, namespace, project, "stale")
    spend(emulator, api_key, 0.2)
    before = wait_spend(kubectl, emulator, project, project_id)["spend"]
    emulator.add_fault({"route": "/v1/organization/costs", "method": "GET", "error_rate": 1.0, "error_status": 503})
    try:
        errors = _polls(spend_operator, "error")
        wait_for(lambda: _polls(spend_operator, "error") >= errors + 2, timeout=60, what="failed costs polls")
        assert get(kubectl, "openaiproject", project)["status"]["spend"] == before
        metrics = httpx.get(f"http://127.0.0.1:{spend_operator.metrics_port}/metrics", timeout=5).text
        assert "openai_operator_spend_poll_last_success_timestamp_seconds" in metrics
        assert "openai_operator_spend_newest_bucket_age_seconds" in metrics
    finally:
        emulator.clear_faults()
    spend(emulator, api_key, 0.2)
    wait_spend(kubectl, emulator, project, project_id, timeout=60)





def test_hard_limit_enforcement_shows_within_a_poll(
    kubectl: Kubectl, emulator: Emulator, operator_factory: OperatorProcess, namespace: str
) -> None:
    """HardLimit: past the limit OpenAI answers 429 to the project's keys, and status.spendLimit says
    `enforcing` at the next costs poll, not only at the (here: slow) project resync; removing the
    budget removes the limit and the key works again."""
    operator_factory.env["OPENAI_OPERATOR_SPEND_POLL_INTERVAL"] = POLL
    operator_factory.env["OPENAI_OPERATOR_PROJECT_RESYNC_INTERVAL"] = "10m"
    operator_factory.start()
    project, project_id = budget_project(kubectl, namespace, monthlyUSD=1, enforcement="HardLimit")
    wait_for(lambda: (emulator.project(project_id).get("spend_limit") or {}).get("threshold_amount") == 100,
             timeout=30, what="the spend limit in OpenAI")
    api_key = issued_key(kubectl, namespace, project, "limited")
    spend(emulator, api_key, 1.0)  # the output tokens take it just past the limit
    client = openai.OpenAI(api_key=api_key, base_url=emulator.base_url, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    wait_for(lambda: get(kubectl, "openaiproject", project)["status"].get("spendLimit", {}).get("enforcement")
             == "enforcing", timeout=20, what="status.spendLimit.enforcement to say enforcing")
    assert condition(get(kubectl, "openaiproject", project), "BudgetExceeded")["status"] == "True"

    kubectl("patch", "openaiproject", project, "--type=json", "-p", '[{"op": "remove", "path": "/spec/budget"}]')
    wait_for(lambda: emulator.project(project_id).get("spend_limit") is None, timeout=30,
             what="the spend limit to be removed")
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices
