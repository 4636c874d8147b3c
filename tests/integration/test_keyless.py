"""Keyless workloads on the real test bed: OpenAIIdentityProvider + OpenAIWorkloadIdentity, the real
apiserver's service-account tokens (TokenRequest, never hand-made JWTs), the official SDK's token
exchange against the emulator, and the emulator's own state as the judge of what exists upstream.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import openai.auth
import pytest
from openai import OpenAI

from failures import metric
from harness import Emulator, OperatorProcess
from scenario import KEY_SHAPE, apply, condition, get, wait_ready
from support import wait_for
from testbed import KubeCluster, Kubectl

AUDIENCE = "https://api.openai.com/v1"
MODEL = "gpt-4o-mini"


def provider_manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIIdentityProvider",
            "metadata": {"name": name}, "spec": {"syncInterval": "2s", **spec}}


def identity_manifest(name: str, namespace: str, project: str, provider: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIWorkloadIdentity",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"projectRef": {"name": project}, "serviceAccountName": "app",
                     "providerRef": {"name": provider}, **spec}}


@pytest.fixture
def identity_provider(kubectl: Kubectl, crds: list[str], operator: OperatorProcess) -> Iterator[str]:
    """An OpenAIIdentityProvider of the test's own (several may exist: identities name theirs)."""
    name = f"idp-{secrets.token_hex(3)}"
    apply(kubectl, provider_manifest(name))
    wait_ready(kubectl, "openaiidentityprovider", name, timeout=60)
    yield name
    kubectl("delete", "openaiidentityprovider", name, "--wait=false", check=False)


@pytest.fixture
def exchange_at_emulator(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    """Point the SDK's token exchange (process-wide) at the emulator's ``POST /oauth/token``."""
    root = emulator.base_url.removesuffix("/v1")
    monkeypatch.setattr(sys.modules["openai._client"], "WorkloadIdentityAuth",
                        functools.partial(openai.auth.WorkloadIdentityAuth, token_exchange_url=root + "/oauth/token"))


def request_token(kubectl: Kubectl, namespace: str, service_account: str, audience: str = AUDIENCE) -> str:
    """A projected-style token from the real apiserver's TokenRequest API."""
    return kubectl("create", "token", service_account, "-n", namespace, f"--audience={audience}",
                   "--duration=10m").stdout.strip()


def config_map(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    return get(kubectl, "configmap", name, "-n", namespace).get("data") or {}


def sdk_client(data: dict[str, str], token_file: Path) -> OpenAI:
    """The workload's client, built only from the ConfigMap and the token file (as the docs show)."""
    return OpenAI(
        base_url=data["OPENAI_BASE_URL"],
        workload_identity={
            "identity_provider_id": data["OPENAI_IDENTITY_PROVIDER_ID"],
            "service_account_id": data["OPENAI_SERVICE_ACCOUNT_ID"],
            "provider": openai.auth.k8s_service_account_token_provider(str(token_file)),
        },
        max_retries=0,
    )


def chat(client: OpenAI) -> str:
    """One chat completion; the client (and its connections) is closed afterwards."""
    with client:
        response = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "ping"}])
    return response.choices[0].message.content or ""


def write_token(tmp_path: Path, token: str) -> Path:
    path = tmp_path / f"token-{secrets.token_hex(3)}"
    path.write_text(token)
    return path


def all_rules(emulator: Emulator) -> list[dict[str, Any]]:
    """Every federation rule of the emulator's organisation, read through the Admin API."""
    rules: list[dict[str, Any]] = []
    for provider in _list(emulator, "/organization/workload_identity_providers"):
        rules.extend(_list(emulator, f"/organization/workload_identity_providers/{provider['id']}/federation_rules"))
    return rules


def rules_for(emulator: Emulator, service_account_id: str) -> list[dict[str, Any]]:
    return [r for r in all_rules(emulator) if r["service_account_id"] == service_account_id]


def account_keys(emulator: Emulator, project_id: str, account_id: str) -> list[dict[str, Any]]:
    for account in emulator.project(project_id)["service_accounts"]:
        if account["id"] == account_id:
            return list(account.get("api_keys") or [])
    return []


def account_exists(emulator: Emulator, project_id: str, account_id: str) -> bool:
    return any(a["id"] == account_id for a in emulator.project(project_id)["service_accounts"])


def no_secret_holds_an_openai_credential(kubectl: Kubectl) -> None:
    secrets_json = json.loads(kubectl("get", "secrets", "-A", "-o", "json").stdout)
    for item in secrets_json["items"]:
        for value in (item.get("data") or {}).values():
            decoded = base64.b64decode(value).decode(errors="replace")
            where = f"{item['metadata']['namespace']}/{item['metadata']['name']}"
            assert not KEY_SHAPE.search(decoded), f"Secret {where} holds something shaped like an OpenAI key"


@pytest.mark.usefixtures("exchange_at_emulator")
def test_serviceaccount_app_calls_openai_without_a_key_and_only_it_can(
    kubectl: Kubectl, namespace: str, project: str, identity_provider: str, emulator: Emulator, tmp_path: Path,
    operator: OperatorProcess,
) -> None:
    for account in ("app", "other"):
        kubectl("create", "serviceaccount", account, "-n", namespace)
    elsewhere = f"t-{secrets.token_hex(4)}"
    kubectl("create", "namespace", elsewhere)
    try:
        kubectl("create", "serviceaccount", "app", "-n", elsewhere)
        apply(kubectl, identity_manifest("app", namespace, project, identity_provider))
        identity = wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=60)
        status = identity["status"]
        assert status["subject"] == f"system:serviceaccount:{namespace}:app"

        # Upstream: one keyless service account, one rule matching exactly the subject.
        account_id, project_id = status["serviceAccountId"], status["projectId"]
        assert account_exists(emulator, project_id, account_id)
        assert account_keys(emulator, project_id, account_id) == [], "the service account must hold no API key"
        (rule,) = rules_for(emulator, account_id)
        assert rule["attribute_matchers"] == {"sub": f"system:serviceaccount:{namespace}:app"}
        assert rule["workload_identity_provider_id"] == status["identityProviderId"]

        data = config_map(kubectl, namespace, "app")
        assert data["OPENAI_IDENTITY_PROVIDER_ID"] == status["identityProviderId"]
        assert data["OPENAI_SERVICE_ACCOUNT_ID"] == account_id
        assert data["OPENAI_PROJECT_ID"] == project_id
        assert data["OPENAI_TOKEN_AUDIENCE"] == AUDIENCE

        token = write_token(tmp_path, request_token(kubectl, namespace, "app"))
        assert chat(sdk_client(data, token))
        mapped = get(kubectl, "events", "-n", namespace, "--field-selector", "reason=Mapped")["items"]
        assert [e["involvedObject"]["name"] for e in mapped] == ["app"]
        assert metric(operator, "openai_operator_workload_identities", condition="Ready", status="True") >= 1
        wait_for(lambda: metric(operator, "openai_operator_identity_provider_mappings", provider=identity_provider,
                                provider_id=status["identityProviderId"]) == 1,
                 timeout=30, what="the provider's next pass to count the mapping")

        refused = {
            "another ServiceAccount": request_token(kubectl, namespace, "other"),
            "another namespace": request_token(kubectl, elsewhere, "app"),
            "another audience": request_token(kubectl, namespace, "app", audience="https://example.invalid"),
        }
        for what, other in refused.items():
            with pytest.raises(openai.OAuthError):  # noqa: PT012 (one exchange per case)
                chat(sdk_client(data, write_token(tmp_path, other)))
                pytest.fail(f"a token of {what} was accepted")
        no_secret_holds_an_openai_credential(kubectl)
    finally:
        kubectl("delete", "namespace", elsewhere, "--wait=false", check=False)


def test_a_namespace_the_project_does_not_allow_gets_no_mapping_and_deletion_unmaps(
    kubectl: Kubectl, namespace: str, project: str, identity_provider: str, emulator: Emulator,
) -> None:
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    refused_ns = f"t-{secrets.token_hex(4)}"
    kubectl("create", "namespace", refused_ns)
    try:
        apply(kubectl, identity_manifest("app", refused_ns, project, identity_provider))
        apply(kubectl, identity_manifest("app", namespace, project, identity_provider))
        allowed = wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=60)
        refused = wait_for(lambda: (obj := get(kubectl, "openaiworkloadidentity", "app", "-n", refused_ns))
                           and condition(obj).get("reason") == "NamespaceNotAllowed" and obj,
                           timeout=60, what="the refused identity to show NamespaceNotAllowed")
        assert "serviceAccountId" not in refused.get("status", {}) or not refused["status"]["serviceAccountId"]
        subject = f"system:serviceaccount:{refused_ns}:app"
        assert not [r for r in all_rules(emulator) if r["attribute_matchers"].get("sub") == subject]

        account_id, project_id = allowed["status"]["serviceAccountId"], allowed["status"]["projectId"]
        assert rules_for(emulator, account_id)
        kubectl("delete", "openaiworkloadidentity", "app", "-n", namespace, "--timeout=60s")
        assert rules_for(emulator, account_id) == []
        assert not account_exists(emulator, project_id, account_id)
    finally:
        kubectl("delete", "namespace", refused_ns, "--wait=false", check=False)


def test_drift_upstream_is_repaired(
    kubectl: Kubectl, namespace: str, project: str, identity_provider: str, emulator: Emulator,
) -> None:
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    apply(kubectl, identity_manifest("app", namespace, project, identity_provider))
    status = wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=60)["status"]
    provider_id, rule_id = status["identityProviderId"], status["federationRuleId"]
    rules_api = _rules_api(emulator)

    # Edited to a wildcard: put back to the exact subject.
    rules_api("POST", f"/{provider_id}/federation_rules/{rule_id}",
              {"attribute_matchers": {"sub": f"system:serviceaccount:{namespace}:*"}})
    wait_for(lambda: [r for r in all_rules(emulator) if r["id"] == rule_id
                      and r["attribute_matchers"] == {"sub": f"system:serviceaccount:{namespace}:app"}],
             timeout=30, what="the edited rule to be put back")

    # Deleted: re-created.
    rules_api("DELETE", f"/{provider_id}/federation_rules/{rule_id}", None)
    wait_for(lambda: [r for r in rules_for(emulator, status["serviceAccountId"]) if r["id"] != rule_id],
             timeout=30, what="a new rule for the deleted one")

    # Service account deleted: a new one, a new rule, and the ConfigMap follows.
    _admin_call(emulator, "DELETE",
                f"/organization/projects/{status['projectId']}/service_accounts/{status['serviceAccountId']}")
    wait_for(lambda: (cm := config_map(kubectl, namespace, "app"))
             and cm.get("OPENAI_SERVICE_ACCOUNT_ID") not in (None, status["serviceAccountId"]) and cm,
             timeout=30, what="a new service account in the ConfigMap")
    new = get(kubectl, "openaiworkloadidentity", "app", "-n", namespace)["status"]
    assert rules_for(emulator, new["serviceAccountId"])


def _admin_call(emulator: Emulator, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    response = httpx.request(method, emulator.base_url + path, json=body,
                             headers={"Authorization": f"Bearer {emulator.admin_key}"}, timeout=10)
    response.raise_for_status()
    return response.json()


def _list(emulator: Emulator, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = _admin_call(emulator, "GET", path + "?limit=100" + (f"&after={after}" if after else ""))
        items.extend(page["data"])
        if not page.get("has_more"):
            return items
        after = page["last_id"]


def _rules_api(emulator: Emulator) -> Any:
    def call(method: str, path: str, body: dict[str, Any] | None) -> Any:
        return _admin_call(emulator, method, "/organization/workload_identity_providers" + path, body)
    return call


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


class ExchangingWorkload:
    """A workload that exchanges its token and calls the API every second, with a fresh client each
    time (so every call is a real exchange), while a kubelet-like refresher keeps its token file
    current through TokenRequest (when the apiserver is down, the file keeps the last token)."""

    def __init__(self, kubectl: Kubectl, namespace: str, data: dict[str, str], token_file: Path) -> None:
        self.kubectl, self.namespace, self.data, self.token_file = kubectl, namespace, data, token_file
        self.calls: list[tuple[str, str | None]] = []
        """(kid of the token used, error or ``None``) per call."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ExchangingWorkload:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _refresh(self) -> None:
        result = self.kubectl("create", "token", "app", "-n", self.namespace, f"--audience={AUDIENCE}",
                              "--duration=10m", check=False)
        if result.returncode == 0 and result.stdout.strip():
            self.token_file.write_text(result.stdout.strip())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._refresh()
            kid = _kid(self.token_file.read_text())
            try:
                chat(sdk_client(self.data, self.token_file))
                self.calls.append((kid, None))
            except openai.OpenAIError as error:
                self.calls.append((kid, f"{type(error).__name__}: {getattr(error, 'error', '')}"))
            self._stop.wait(1.0)

    def calls_with(self, kid: str) -> int:
        return sum(1 for k, error in self.calls if k == kid and error is None)

    @property
    def failures(self) -> list[tuple[str, str | None]]:
        return [c for c in self.calls if c[1] is not None]


def _uploaded_kids(kubectl: Kubectl, provider: str) -> set[str]:
    return set(get(kubectl, "openaiidentityprovider", provider).get("status", {}).get("keyIds") or [])


def _jwks_kids(kubectl: Kubectl) -> set[str]:
    return {k["kid"] for k in json.loads(kubectl("get", "--raw", "/openid/v1/jwks").stdout)["keys"]}


@pytest.mark.usefixtures("exchange_at_emulator")
def test_signing_key_rotation_keeps_exchanges_working_and_a_removed_key_is_refused(
    service_account_keys: KubeCluster, kubectl: Kubectl, namespace: str, project: str, identity_provider: str,
    emulator: Emulator, tmp_path: Path, operator: OperatorProcess,
) -> None:
    kube = service_account_keys
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    apply(kubectl, identity_manifest("app", namespace, project, identity_provider))
    wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=60)
    data = config_map(kubectl, namespace, "app")
    old_token = request_token(kubectl, namespace, "app")
    old_kid = _kid(old_token)
    assert _uploaded_kids(kubectl, identity_provider) == {old_kid}
    old_key = kube.signing_key
    new_key = kube.new_service_account_key("EC")
    token_file = write_token(tmp_path, old_token)

    with ExchangingWorkload(kubectl, namespace, data, token_file) as workload:
        wait_for(lambda: workload.calls_with(old_kid) >= 2, timeout=30, what="calls before the rotation")

        # 1. An additional key: the operator uploads old and new together.
        kube.restart_apiserver(signing_key=old_key, verification_keys=[old_key, new_key])
        both = _jwks_kids(kubectl)
        new_kid = (both - {old_kid}).pop()
        wait_for(lambda: _uploaded_kids(kubectl, identity_provider) == both, timeout=30,
                 what="the operator to upload the JWKS with both keys")

        # 2. The new key signs: the workload's tokens now carry its kid, and still exchange.
        kube.restart_apiserver(signing_key=new_key, verification_keys=[old_key, new_key])
        wait_for(lambda: workload.calls_with(new_kid) >= 2, timeout=60, what="calls with tokens of the new key")

        # 3. The old key removed: the operator uploads the new key alone.
        kube.restart_apiserver(signing_key=new_key)
        wait_for(lambda: _uploaded_kids(kubectl, identity_provider) == {new_kid}, timeout=30,
                 what="the operator to upload the JWKS without the old key")
        settled = workload.calls_with(new_kid)
        wait_for(lambda: workload.calls_with(new_kid) >= settled + 2, timeout=30,
                 what="calls after the old key was removed")

    assert workload.failures == [], f"{len(workload.failures)} of {len(workload.calls)} calls failed"
    assert metric(operator, "openai_operator_jwks_uploads_total") >= 2
    assert workload.calls_with(old_kid) >= 2
    with pytest.raises(openai.OAuthError):
        chat(sdk_client(data, write_token(tmp_path, old_token)))
    events = json.loads(kubectl("get", "events", "-A", "--field-selector", "reason=JwksUploaded", "-o",
                                "json").stdout)["items"]
    assert any(e["involvedObject"]["name"] == identity_provider for e in events)


@pytest.mark.usefixtures("exchange_at_emulator")
def test_the_51st_mapping_spreads_to_a_second_provider_for_the_same_issuer(
    kubectl: Kubectl, namespace: str, project: str, identity_provider: str, emulator: Emulator, tmp_path: Path,
) -> None:
    status = get(kubectl, "openaiidentityprovider", identity_provider)["status"]
    (first,) = status["providerIds"]
    project_id = get(kubectl, "openaiproject", project)["status"]["projectId"]
    filler = _admin_call(emulator, "POST", f"/organization/projects/{project_id}/service_accounts",
                         {"name": "filler", "expires_in_seconds": 60})
    for i in range(50):
        _rules_api(emulator)("POST", f"/{first}/federation_rules", {
            "project_id": project_id, "service_account_id": filler["id"], "name": f"filler-{i}",
            "attribute_matchers": {"sub": f"system:serviceaccount:filler:sa-{i}"}})
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    apply(kubectl, identity_manifest("app", namespace, project, identity_provider))
    identity = wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=90)["status"]

    provider = wait_for(lambda: (s := get(kubectl, "openaiidentityprovider", identity_provider)["status"])
                        and len(s["providerIds"]) == 2 and s["mappingsUsed"] == 51 and s, timeout=30,
                        what="the provider to show two OpenAI providers holding 51 mappings")
    second = provider["providerIds"][1]
    assert identity["identityProviderId"] == second
    assert provider["mappingsCapacity"] == 100
    issuers = {p["id"]: p["issuer"] for p in _list(emulator, "/organization/workload_identity_providers")}
    assert issuers[first] == issuers[second] == provider["issuer"]
    assert [r["id"] for r in rules_for(emulator, identity["serviceAccountId"])] == [identity["federationRuleId"]]
    events = json.loads(kubectl("get", "events", "--field-selector", "reason=ProviderAdded", "-o",
                                "json").stdout)["items"]
    assert any(e["involvedObject"]["name"] == identity_provider for e in events)
    token = write_token(tmp_path, request_token(kubectl, namespace, "app"))
    assert chat(sdk_client(config_map(kubectl, namespace, "app"), token))


@pytest.mark.usefixtures("exchange_at_emulator")
def test_spend_of_the_access_tokens_shows_in_the_identitys_status(
    kubectl: Kubectl, crds: list[str], namespace: str, project: str, operator_factory: OperatorProcess,
    emulator: Emulator, tmp_path: Path,
) -> None:
    operator_factory.env["OPENAI_OPERATOR_SPEND_POLL_INTERVAL"] = "2s"
    operator_factory.start()
    provider = f"idp-{secrets.token_hex(3)}"
    apply(kubectl, provider_manifest(provider))
    try:
        wait_ready(kubectl, "openaiidentityprovider", provider, timeout=60)
        kubectl("create", "serviceaccount", "app", "-n", namespace)
        apply(kubectl, identity_manifest("app", namespace, project, provider))
        wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=60)
        token = write_token(tmp_path, request_token(kubectl, namespace, "app"))
        with sdk_client(config_map(kubectl, namespace, "app"), token) as client:
            # About 5 cents on gpt-4o (2.50 USD per million input tokens, some four characters a token):
            # status.spend is in whole cents.
            client.chat.completions.create(model="gpt-4o", max_tokens=16,
                                           messages=[{"role": "user", "content": "x" * 80_000}])
        spend = wait_for(lambda: (s := get(kubectl, "openaiworkloadidentity", "app", "-n", namespace)
                                  ["status"].get("spend")) and s.get("monthToDateUSD", 0) > 0 and s,
                         timeout=60, what="the identity's spend to show the chat completions")
        assert spend["asOf"]
        printed = kubectl("get", "openaiworkloadidentity", "app", "-n", namespace).stdout
        assert "SPEND" in printed.splitlines()[0]
    finally:
        kubectl("delete", "openaiidentityprovider", provider, "--wait=false", check=False)


def test_max_keys_counts_workload_identities_with_keys(
    kubectl: Kubectl, namespace: str, identity_provider: str, emulator: Emulator,
) -> None:
    project = f"p-{secrets.token_hex(3)}"
    apply(kubectl, {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIProject",
                    "metadata": {"name": project},
                    "spec": {"keyPolicy": {"allowedNamespaces": {"names": [namespace]}, "maxKeys": 1}}})
    try:
        wait_ready(kubectl, "openaiproject", project, timeout=60)
        kubectl("create", "serviceaccount", "app", "-n", namespace)
        apply(kubectl, identity_manifest("first", namespace, project, identity_provider))
        wait_ready(kubectl, "openaiworkloadidentity", "first", "-n", namespace, timeout=60)
        apply(kubectl, identity_manifest("second", namespace, project, identity_provider))
        apply(kubectl, {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIKey",
                        "metadata": {"name": "key", "namespace": namespace},
                        "spec": {"projectRef": {"name": project}, "secret": {}}})
        for kind, name in (("openaiworkloadidentity", "second"), ("openaikey", "key")):
            wait_for(lambda kind=kind, name=name: condition(get(kubectl, kind, name, "-n", namespace))
                     .get("reason") == "KeyQuotaExceeded", timeout=60, what=f"{kind} {name} to be refused by maxKeys")
        assert get(kubectl, "secret", "key", "-n", namespace) == {}
    finally:
        kubectl("delete", "openaiworkloadidentity", "--all", "-n", namespace, "--timeout=60s", check=False)
        kubectl("delete", "openaikey", "--all", "-n", namespace, "--timeout=60s", check=False)
        kubectl("delete", "openaiproject", project, "--wait=false", check=False)


def test_named_workloads_get_the_token_volume_and_environment_once(
    kubectl: Kubectl, namespace: str, project: str, identity_provider: str, emulator: Emulator,
) -> None:
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    container = {"name": "main", "image": "registry.invalid/app:1", "env": [{"name": "KEEP", "value": "me"}]}
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}
    apply(kubectl, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": template}})
    apply(kubectl, {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": namespace},
                    "spec": {"replicas": 0, "serviceName": "db", "selector": {"matchLabels": {"app": "web"}},
                             "template": template}})
    apply(kubectl, identity_manifest("app", namespace, project, identity_provider, tokenExpirationSeconds=1800,
                                     workloads=[{"kind": "Deployment", "name": "web"},
                                                {"kind": "StatefulSet", "name": "db"}]))
    wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=60)

    def patched(kind: str, name: str) -> dict[str, Any] | None:
        obj = get(kubectl, kind, name, "-n", namespace)
        spec = obj["spec"]["template"]["spec"]
        volumes = [v for v in spec.get("volumes") or [] if v["name"] == "openai-workload-identity"]
        return obj if volumes and spec.get("serviceAccountName") == "app" else None

    for kind, name in (("deployment", "web"), ("statefulset", "db")):
        obj = wait_for(lambda kind=kind, name=name: patched(kind, name), timeout=30, what=f"{kind} {name} patched")
        spec = obj["spec"]["template"]["spec"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "openai-workload-identity"]
        assert volume["projected"]["sources"] == [{"serviceAccountToken": {
            "audience": AUDIENCE, "expirationSeconds": 1800, "path": "token"}}]
        (main,) = spec["containers"]
        env = {e["name"]: e for e in main["env"]}
        assert env["KEEP"]["value"] == "me"
        assert env["OPENAI_SERVICE_ACCOUNT_ID"]["valueFrom"]["configMapKeyRef"] == {
            "name": "app", "key": "OPENAI_SERVICE_ACCOUNT_ID"}
        assert {"name": "openai-workload-identity", "mountPath": "/var/run/secrets/openai",
                "readOnly": True} in main["volumeMounts"]
    generations = {k: get(kubectl, k, n, "-n", namespace)["metadata"]["generation"]
                   for k, n in (("deployment", "web"), ("statefulset", "db"))}
    # A positive signal that the identity's loop ran again: it reads its rule each pass (every 2s).
    before = _rule_reads(emulator)
    wait_for(lambda: _rule_reads(emulator) >= before + 3, timeout=30, what="three more passes of the identity")
    assert {k: get(kubectl, k, n, "-n", namespace)["metadata"]["generation"]
            for k, n in (("deployment", "web"), ("statefulset", "db"))} == generations, "patched again"
    patched_events = get(kubectl, "events", "-n", namespace, "--field-selector", "reason=WorkloadsPatched")["items"]
    assert len(patched_events) == 1
    assert patched_events[0].get("count", 1) == 1
    degraded = next(c for c in get(kubectl, "openaiworkloadidentity", "app", "-n", namespace)["status"]["conditions"]
                    if c["type"] == "Degraded")
    assert degraded["status"] == "False"


def _rule_reads(emulator: Emulator) -> int:
    return sum(c["count"] for c in emulator.admin_calls()
               if c["method"] == "GET" and c["route"].endswith("/federation_rules/{rule_id}"))


def test_an_identity_deleted_while_the_operator_was_down_leaves_no_rule_or_account(
    kubectl: Kubectl, namespace: str, project: str, identity_provider: str, operator: OperatorProcess,
    emulator: Emulator,
) -> None:
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    apply(kubectl, identity_manifest("app", namespace, project, identity_provider))
    status = wait_ready(kubectl, "openaiworkloadidentity", "app", "-n", namespace, timeout=60)["status"]
    account_id, project_id = status["serviceAccountId"], status["projectId"]
    operator.stop()
    kubectl("patch", "openaiworkloadidentity", "app", "-n", namespace, "--type=merge",
            "-p", '{"metadata": {"finalizers": null}}')
    kubectl("delete", "openaiworkloadidentity", "app", "-n", namespace, "--timeout=30s")
    assert rules_for(emulator, account_id), "the rule outlived its object while the operator was down"
    operator.start()
    wait_for(lambda: not rules_for(emulator, account_id), timeout=60, what="the provider's sweep to delete the rule")
    wait_for(lambda: not account_exists(emulator, project_id, account_id), timeout=60,
             what="the inventory to delete the orphaned keyless service account")
    events = json.loads(kubectl("get", "events", "--field-selector", "reason=OrphanRevoked", "-o",
                                "json").stdout)["items"]
    assert any(account_id in e["message"] or "wif." in e["message"] for e in events)


def _identity_body(namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIWorkloadIdentity",
            "metadata": {"name": f"wi-{secrets.token_hex(3)}", "namespace": namespace},
            "spec": {"projectRef": {"name": "p"}, "serviceAccountName": "app", **spec}}


@pytest.mark.parametrize(("spec", "field"), [
    pytest.param({"scopes": ["api.all.read"]}, "spec.scopes", id="scopes without Restricted"),
    pytest.param({"permissions": "Restricted"}, "spec.scopes", id="Restricted without scopes"),
    pytest.param({"permissions": "Admin"}, "spec.permissions", id="unknown permissions"),
    pytest.param({"serviceAccountName": "system:serviceaccount:*"}, "spec.serviceAccountName", id="a wildcard"),
    pytest.param({"workloads": [{"kind": "DaemonSet", "name": "x"}]}, "spec.workloads[0].kind", id="DaemonSet"),
    pytest.param({"tokenExpirationSeconds": 60}, "spec.tokenExpirationSeconds", id="token under 10 minutes"),
])
def test_the_apiserver_refuses_bad_identities_naming_the_field(
    kubectl: Kubectl, crds: list[str], namespace: str, spec: dict[str, Any], field: str,
) -> None:
    result = kubectl("apply", "--server-side", "-f", "-", input=json.dumps(_identity_body(namespace, **spec)),
                     check=False)
    assert result.returncode != 0
    assert field in result.stderr


def test_the_mapped_subject_cannot_be_changed_in_place(kubectl: Kubectl, crds: list[str], namespace: str) -> None:
    body = _identity_body(namespace)
    apply(kubectl, body)
    body["spec"]["serviceAccountName"] = "other"
    result = kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "spec.serviceAccountName is immutable" in result.stderr
    kubectl("delete", "openaiworkloadidentity", body["metadata"]["name"], "-n", namespace, "--wait=false")
