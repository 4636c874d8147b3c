"""The operator's Kubernetes client and its login against the real apiserver.

The login is Kopf's (``handlers.lifecycle.login``): it runs in a child process, since importing Kopf
here would install its log handlers in the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from kube_rest import connection
from openai_operator.errors import PermanentError
from openai_operator.k8s.api import KubeApi, KubeConnection, KubeStatusError, resource_path
from openai_operator.k8s.errors import classify_api_exception

if TYPE_CHECKING:
    from testbed import KubeCluster, Kubectl

pytestmark = pytest.mark.integration

KUBE_SYSTEM = resource_path("", "v1", "namespaces", name="kube-system")

_LOGIN_AND_READ = """
import asyncio, json, kopf
from openai_operator.handlers.lifecycle import kube_connection
from openai_operator.k8s.api import KubeApi

async def main():
    api = KubeApi(kube_connection(settings=kopf.OperatorSettings()))
    try:
        found = await api.get("/api/v1/namespaces/kube-system")
    finally:
        await api.aclose()
    print(json.dumps({"uid": found["metadata"]["uid"]}))

asyncio.run(main())
"""


def test_the_operator_logs_in_from_the_kubeconfig_as_kopf_does(kube: KubeCluster, kubectl: Kubectl) -> None:
    expected = kubectl("get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}").stdout.strip()
    done = subprocess.run([sys.executable, "-c", _LOGIN_AND_READ], env=kube.env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"uid": expected}


async def test_a_refused_token_is_replaced_by_a_fresh_login_once(kube: KubeCluster) -> None:
    good = connection(kube.kubeconfig)
    logins: list[str] = []

    def connect() -> KubeConnection:
        # The first login hands out a token the apiserver does not know (one that expired, say).
        logins.append("stale" if not logins else "fresh")
        return good if logins[-1] == "fresh" else replace(good, headers={"Authorization": "Bearer not-a-token"})

    api = KubeApi(connect)
    try:
        found = await api.get(KUBE_SYSTEM)
    finally:
        await api.aclose()
    assert found["metadata"]["name"] == "kube-system"
    assert logins == ["stale", "fresh"]


async def test_credentials_that_stay_refused_are_a_permanent_error_naming_the_credentials(kube: KubeCluster) -> None:
    refused = replace(connection(kube.kubeconfig), headers={"Authorization": "Bearer not-a-token"})
    logins = 0

    def connect() -> KubeConnection:
        nonlocal logins
        logins += 1
        return refused

    api = KubeApi(connect)
    try:
        with pytest.raises(KubeStatusError) as caught:
            await api.get(KUBE_SYSTEM)
    finally:
        await api.aclose()
    assert caught.value.status == 401
    assert logins == 2  # at start, and once more after the 401
    error = classify_api_exception(caught.value, "get", "namespace kube-system", resource="namespaces")
    assert isinstance(error, PermanentError)
    assert "credentials were rejected" in error.message


async def test_writes_name_the_operator_and_refusals_come_back_as_the_apiserver_said(
    kube: KubeCluster, namespace: str,
) -> None:
    api = KubeApi(lambda: connection(kube.kubeconfig))
    configmaps = resource_path("", "v1", "configmaps", namespace=namespace)
    try:
        assert await api.read(f"{configmaps}/absent") is None
        made = await api.create(configmaps, {"metadata": {"name": "c"}, "data": {"a": "1"}})
        stale = made["metadata"]["resourceVersion"]
        assert [f["manager"] for f in made["metadata"]["managedFields"]] == ["openai-operator"]
        await api.patch(f"{configmaps}/c", {"data": {"a": "2"}})
        with pytest.raises(KubeStatusError) as conflict:
            await api.replace(f"{configmaps}/c", {"metadata": {"name": "c", "resourceVersion": stale},
                                                  "data": {"a": "3"}})
        with pytest.raises(KubeStatusError) as invalid:
            await api.create(configmaps, {"metadata": {"name": "Not_A_Name"}, "data": {"a": "sk-not-echoed"}})
        await api.delete(f"{configmaps}/c")
        assert await api.read(f"{configmaps}/c") is None
    finally:
        await api.aclose()
    assert (conflict.value.status, conflict.value.reason) == (409, "Conflict")
    assert (invalid.value.status, invalid.value.reason) == (422, "Invalid")
    assert "sk-not-echoed" not in str(invalid.value)
    assert "Not_A_Name" not in str(invalid.value)
