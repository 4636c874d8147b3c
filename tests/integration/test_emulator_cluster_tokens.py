"""The emulator's token exchange accepts what the real apiserver issues, and follows its key rotation.

No hand-made JWTs: every subject token here is a TokenRequest token from the test bed's
kube-apiserver, exchanged through the official SDK (``OpenAI(workload_identity=...)`` with
``k8s_service_account_token_provider``). The provider is registered by hand here, as the operator
would (issuer from discovery, JWKS uploaded from ``/openid/v1/jwks``), so the emulator side is
shown to work with real cluster tokens independently of the operator.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import openai.auth
import pytest

from openai_emulator import ThreadedEmulator, new_admin_key
from testbed import KubeCluster, Kubectl

AUDIENCE = "https://api.openai.com/v1"
CHAT: Any = [{"role": "user", "content": "hello from a keyless workload"}]


@dataclass
class Federation:
    emu: ThreadedEmulator
    admin: openai.OpenAI
    provider_id: str
    project_id: str
    sa_id: str
    clients: list[openai.OpenAI] = field(default_factory=list)

    def upload_cluster_jwks(self, kubectl: Kubectl) -> None:
        jwks = json.loads(kubectl("get", "--raw", "/openid/v1/jwks").stdout)
        self.admin.admin.organization.workload_identity_providers.update(
            self.provider_id, verification={"type": "uploaded_jwks", "jwks": jwks}
        )

    def workload(self, token_file: Path) -> openai.OpenAI:
        client = openai.OpenAI(
            workload_identity={
                "identity_provider_id": self.provider_id,
                "service_account_id": self.sa_id,
                "provider": openai.auth.k8s_service_account_token_provider(token_file),
            },
            base_url=self.emu.base_url,
            max_retries=0,
        )
        self.clients.append(client)
        return client


@pytest.fixture
def federation(
    kubectl: Kubectl, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Federation]:
    admin_key = new_admin_key()
    with ThreadedEmulator(admin_key=admin_key) as emu:
        monkeypatch.setattr(
            sys.modules["openai._client"],
            "WorkloadIdentityAuth",
            functools.partial(openai.auth.WorkloadIdentityAuth, token_exchange_url=emu.root_url + "/oauth/token"),
        )
        admin = openai.OpenAI(api_key="unused", admin_api_key=admin_key, base_url=emu.base_url, max_retries=0)
        issuer = json.loads(kubectl("get", "--raw", "/.well-known/openid-configuration").stdout)["issuer"]
        provider = admin.admin.organization.workload_identity_providers.create(
            name="test-bed", issuer=issuer, audience=AUDIENCE, type="oidc"
        )
        project = admin.admin.organization.projects.create(name="keyless")
        sa = admin.admin.organization.projects.service_accounts.create(
            project_id=project.id, name=f"k8s.{namespace}.app", create_service_account_only=True
        )
        admin.admin.organization.workload_identity_providers.federation_rules.create(
            provider.id,
            attribute_matchers={"sub": f"system:serviceaccount:{namespace}:app"},
            project_id=project.id,
            service_account_id=sa.id,
        )
        fed = Federation(emu, admin, provider.id, project.id, sa.id)
        fed.upload_cluster_jwks(kubectl)
        yield fed
        for client in [admin, *fed.clients]:
            client.close()  # open keep-alive connections would hold up the emulator's shutdown


def _token(kubectl: Kubectl, path: Path, namespace: str, name: str = "app", audience: str = AUDIENCE) -> Path:
    token = kubectl("create", "token", name, "-n", namespace, f"--audience={audience}", "--duration=10m").stdout
    path.write_text(token.strip())
    return path


def test_a_cluster_token_exchanges_and_others_are_refused(
    federation: Federation, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    kubectl("create", "namespace", f"{namespace}-other")
    try:
        for ns, name in ((namespace, "app"), (namespace, "other"), (f"{namespace}-other", "app")):
            kubectl("create", "serviceaccount", name, "-n", ns)
        client = federation.workload(_token(kubectl, tmp_path / "app", namespace))
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert reply.choices[0].message.content
        cases = {
            "another ServiceAccount": (_token(kubectl, tmp_path / "other", namespace, "other"), "invalid_grant"),
            "another namespace": (_token(kubectl, tmp_path / "ns", f"{namespace}-other"), "invalid_grant"),
            "another audience": (
                _token(kubectl, tmp_path / "aud", namespace, audience="https://example.com"),
                "invalid_subject_token",
            ),
        }
        for what, (path, error) in cases.items():
            with pytest.raises(openai.OAuthError) as info:
                federation.workload(path).models.list()
            assert info.value.error == error, what
    finally:
        kubectl("delete", "namespace", f"{namespace}-other", "--wait=false", check=False)


def test_exchanges_follow_the_clusters_key_rotation(
    federation: Federation, service_account_keys: KubeCluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    kube = service_account_keys
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    old_file = _token(kubectl, tmp_path / "old", namespace)
    assert federation.workload(old_file).models.list().data

    old, new = kube.signing_key, kube.new_service_account_key("EC")
    kube.restart_apiserver(signing_key=old, verification_keys=[old, new])
    federation.upload_cluster_jwks(kubectl)  # the overlap: old and new keys together
    kube.restart_apiserver(signing_key=new, verification_keys=[old, new])
    new_file = _token(kubectl, tmp_path / "new", namespace)
    assert federation.workload(new_file).models.list().data  # ES256, signed by the new key
    assert federation.workload(old_file).models.list().data  # still in the uploaded JWKS

    kube.restart_apiserver(signing_key=new)
    federation.upload_cluster_jwks(kubectl)
    assert federation.workload(new_file).models.list().data
    with pytest.raises(openai.OAuthError) as info:
        federation.workload(old_file).models.list()
    assert info.value.error == "invalid_subject_token"
    assert "not in the provider's JWKS" in info.value.message
