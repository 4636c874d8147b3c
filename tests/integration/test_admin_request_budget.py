"""The Admin API request budget on the real test bed: with the budget set below the organisation's
Admin API rate limit, a burst of new keys all become Ready and OpenAI never answers 429.

The emulator enforces the limit itself (a sliding one-second window, ``admin_requests_per_second``)
and counts what it refused; the operator's ``openai_operator_admin_api_budget_wait_seconds_total``
shows that the budget, not luck, kept it under.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest

from harness import Emulator, OperatorProcess, running_emulator
from scenario import apply, condition, get, key_manifest, project_manifest
from support import wait_for
from testbed import Kubectl

LIMIT_PER_SECOND = 5
KEYS = 12


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of this module's own: the rate limit must not reach other tests."""
    with running_emulator(tmp_path_factory.mktemp("budget-emulator")) as emulator:
        yield emulator


def _set_limit(emulator: Emulator, per_second: int | None) -> dict[str, object]:
    response = httpx.post(f"{emulator.control}/config", json={"admin_requests_per_second": per_second}, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def _refused(emulator: Emulator) -> int:
    return int(httpx.get(f"{emulator.control}/config", timeout=10).json()["admin_requests_refused"])


def _budget_wait(operator: OperatorProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).text
    found = re.search(r"^openai_operator_admin_api_budget_wait_seconds_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_burst_of_keys_under_the_budget_never_meets_a_429(
    kubectl: Kubectl, namespace: str, emulator: Emulator, operator_factory: OperatorProcess
) -> None:
    _set_limit(emulator, LIMIT_PER_SECOND)
    try:
        # A token bucket admits up to burst + rate requests in any one second: keep that under the limit.
        operator_factory.env["OPENAI_OPERATOR_ADMIN_API_RATE"] = "2.5"
        operator_factory.env["OPENAI_OPERATOR_ADMIN_API_BURST"] = "2"
        operator_factory.start()
        project = f"p-{secrets.token_hex(3)}"
        apply(kubectl, project_manifest(project, keyPolicy={"allowedNamespaces": {"names": [namespace]}}))
        names = [f"burst-{i}" for i in range(KEYS)]
        for name in names:
            apply(kubectl, key_manifest(name, namespace, project))

        def all_ready() -> bool:
            keys = get(kubectl, "openaikeys", "-n", namespace).get("items", [])
            ready = [k for k in keys if condition(k).get("status") == "True"]
            return len(ready) == KEYS

        wait_for(all_ready, timeout=180, what=f"all {KEYS} keys Ready under the request budget")
        assert _refused(emulator) == 0, "OpenAI answered 429 although the operator kept a budget below the limit"
        assert _budget_wait(operator_factory) > 0, "the burst never had to wait: the test did not load the budget"
    finally:
        _set_limit(emulator, None)
