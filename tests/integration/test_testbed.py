"""The test bed is made of real parts: these fail if any of them were a stub.

Each test proves one behaviour only a real component has: OpenAPI and CEL validation in the
apiserver, garbage collection and namespace deletion in the controller manager, RBAC for
ServiceAccount tokens, and KV v2 check-and-set in OpenBao.
"""

from __future__ import annotations

import json
import secrets

import hvac
import hvac.exceptions
import pytest

from support import wait_for
from testbed import Kubectl, VaultServer

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.openai.operator.dev
spec:
  group: smoke.openai.operator.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "!has(self.maxSize) || self.size <= self.maxSize"
              message: "size must not exceed maxSize"
              fieldPath: ".size"
            properties:
              size: {type: integer, minimum: 1}
              maxSize: {type: integer}
              colour: {type: string, enum: [red, blue]}
"""


def widget(name: str, namespace: str, spec: dict[str, object]) -> str:
    return json.dumps(
        {"apiVersion": "smoke.openai.operator.dev/v1", "kind": "Widget",
         "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    )


@pytest.fixture(scope="module")
def widget_crd(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=WIDGET_CRD)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.smoke.openai.operator.dev")


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"size": 5, "maxSize": 3}, "spec.size", "size must not exceed maxSize"),
        ({"size": 0}, "spec.size", "should be greater than or equal to 1"),
        ({"size": 1, "colour": "green"}, "spec.colour", "Unsupported value"),
        ({}, "spec.size", "Required value"),
    ],
    ids=["a CEL rule rejects size above maxSize", "the schema minimum rejects zero",
         "the schema enum rejects an unknown colour", "a missing required field is rejected"],
)
def test_apiserver_rejects_invalid_objects_naming_the_field(
    kubectl: Kubectl, widget_crd: None, namespace: str, spec: dict[str, object], field: str, message: str
) -> None:
    result = kubectl("apply", "-f", "-", input=widget("bad", namespace, spec), check=False)
    assert result.returncode != 0
    assert field in result.stderr
    assert message in result.stderr


def test_apiserver_accepts_a_valid_object(kubectl: Kubectl, widget_crd: None, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=widget("good", namespace, {"size": 2, "maxSize": 3}))
    stored = json.loads(kubectl("get", "widget", "good", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"] == {"size": 2, "maxSize": 3}


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "owner", "-n", namespace)
    owner_uid = kubectl("get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    dependent = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dependent", "namespace": namespace, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}]},
    }
    kubectl("apply", "-f", "-", input=json.dumps(dependent))
    kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_for(
        lambda: kubectl("get", "configmap", "dependent", "-n", namespace, check=False).returncode != 0,
        timeout=60, what="the garbage collector to delete the dependent ConfigMap",
    )


def test_namespace_deletion_finishes(kubectl: Kubectl) -> None:
    name = f"t-del-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    kubectl("create", "configmap", "content", "-n", name)
    kubectl("delete", "namespace", name, "--wait=false")
    wait_for(
        lambda: kubectl("get", "namespace", name, check=False).returncode != 0,
        timeout=60, what=f"namespace {name} to be deleted by the namespace controller",
    )


def test_service_account_token_without_rbac_gets_403(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    denied = kubectl("get", "secrets", "-n", namespace, f"--token={token}", check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{namespace}:nobody" in denied.stderr

    kubectl("create", "role", "read-secrets", "-n", namespace, "--verb=list", "--resource=secrets")
    kubectl("create", "rolebinding", "nobody-reads", "-n", namespace, "--role=read-secrets",
            f"--serviceaccount={namespace}:nobody")
    wait_for(
        lambda: kubectl("get", "secrets", "-n", namespace, f"--token={token}", check=False).returncode == 0,
        timeout=30, what="RBAC to allow the ServiceAccount once bound",
    )


def test_openbao_kv2_check_and_set_and_read_back(vault: VaultServer) -> None:
    client = hvac.Client(url=vault.address, token=vault.token)
    assert client.is_authenticated()
    kv = client.secrets.kv.v2
    path = f"smoke/{secrets.token_hex(4)}"
    first = kv.create_or_update_secret(path=path, secret={"field": "one"}, cas=0, mount_point="secret")
    assert first["data"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        kv.create_or_update_secret(path=path, secret={"field": "clobber"}, cas=0, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        kv.create_or_update_secret(path=path, secret={"field": "stale"}, cas=5, mount_point="secret")
    second = kv.create_or_update_secret(path=path, secret={"field": "two"}, cas=1, mount_point="secret")
    assert second["data"]["version"] == 2
    read = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"field": "two"}
    assert read["data"]["metadata"]["version"] == 2
