"""The pod-template patch an OpenAIWorkloadIdentity applies to its workloads: what it adds, and that it
is computed from what the operator sets only (apiserver defaults never cause a second patch)."""

from __future__ import annotations

from typing import Any

import pytest

from openai_operator.k8s.identity import CONFIG_ANNOTATION, VOLUME_NAME, pod_template_patch

pytestmark = pytest.mark.unit

KEYS = ["OPENAI_IDENTITY_PROVIDER_ID", "OPENAI_SERVICE_ACCOUNT_ID"]


def patch(template: dict[str, Any], digest: str = "d1") -> dict[str, Any] | None:
    return pod_template_patch(template, service_account="app", config_map="cm", keys=KEYS,
                              audience="https://api.openai.com/v1", expiration_seconds=3600, digest=digest)


def bare() -> dict[str, Any]:
    return {"metadata": {}, "spec": {"containers": [{"name": "main", "env": [{"name": "KEEP", "value": "1"}]},
                                                    {"name": "side"}]}}


def applied(template: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``change`` merged into ``template`` as the apiserver would (with its defaults filled in)."""
    spec = template["spec"]
    spec["serviceAccountName"] = change["spec"]["serviceAccountName"]
    (volume,) = change["spec"]["volumes"]
    spec["volumes"] = [{**volume, "projected": {**volume["projected"], "defaultMode": 420}}]
    for container, wanted in zip(spec["containers"], change["spec"]["containers"], strict=True):
        container.setdefault("env", []).extend(wanted["env"])
        container["volumeMounts"] = [{**m, "mountPropagation": "None"} for m in wanted["volumeMounts"]]
    template["metadata"]["annotations"] = change["metadata"]["annotations"]
    return template


def test_a_bare_template_gets_the_volume_mounts_environment_and_service_account() -> None:
    change = patch(bare())
    assert change is not None
    assert change["spec"]["serviceAccountName"] == "app"
    (volume,) = change["spec"]["volumes"]
    assert volume["name"] == VOLUME_NAME
    assert volume["projected"]["sources"] == [{"serviceAccountToken": {
        "path": "token", "audience": "https://api.openai.com/v1", "expirationSeconds": 3600}}]
    assert [c["name"] for c in change["spec"]["containers"]] == ["main", "side"]
    env = change["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == KEYS
    assert env[0]["valueFrom"] == {"configMapKeyRef": {"name": "cm", "key": KEYS[0]}}
    assert change["metadata"]["annotations"] == {CONFIG_ANNOTATION: "d1"}


def test_a_patched_template_with_apiserver_defaults_needs_nothing() -> None:
    template = bare()
    change = patch(template)
    assert change is not None
    assert patch(applied(template, change)) is None


@pytest.mark.parametrize("edit", [
    pytest.param(lambda t: t["spec"].update(serviceAccountName="default"), id="another ServiceAccount"),
    pytest.param(lambda t: t["spec"]["containers"][1]["env"].pop(), id="an env var removed"),
    pytest.param(lambda t: t["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
                 .update(audience="other"), id="another audience"),
])
def test_a_drifted_template_is_patched_again(edit: Any) -> None:
    template = bare()
    change = patch(template)
    assert change is not None
    template = applied(template, change)
    edit(template)
    assert patch(template) is not None


def test_a_new_config_digest_rolls_the_pods() -> None:
    template = bare()
    change = patch(template)
    assert change is not None
    again = patch(applied(template, change), digest="d2")
    assert again is not None
    assert again["metadata"]["annotations"] == {CONFIG_ANNOTATION: "d2"}
