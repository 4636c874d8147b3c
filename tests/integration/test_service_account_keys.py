"""The test bed's apiserver as a workload identity issuer: discovery as in a real cluster, and
restarts with other ServiceAccount keys (``KubeCluster.restart_apiserver``) that change the JWKS and
the ``kid`` of new tokens while etcd and its objects stay.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from openai_devstack.pki import service_account_kid
from openai_devstack.stack import SERVICE_ACCOUNT_ISSUER
from testbed import KubeCluster, Kubectl

AUDIENCE = "https://api.openai.com/v1"


def _claims_and_header(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(i: int) -> dict[str, Any]:
        raw = token.split(".")[i]
        out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return out

    return part(0), part(1)


class Api:
    """Plain HTTPS to the apiserver named by the kubeconfig, with a chosen bearer token."""

    def __init__(self, kube: KubeCluster) -> None:
        config = yaml.safe_load(kube.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"]
        with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as fh:
            fh.write(base64.b64decode(cluster["certificate-authority-data"]))
        self.tls = ssl.create_default_context(cafile=fh.name)
        Path(fh.name).unlink()

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(self.server + path, verify=self.tls, timeout=10, headers={"Authorization": f"Bearer {token}"})


def _token(kubectl: Kubectl, namespace: str, audience: str | None = None) -> str:
    args = ["create", "token", "app", "-n", namespace, "--duration=10m"]
    if audience is not None:
        args.append(f"--audience={audience}")
    return kubectl(*args).stdout.strip()


def _jwks_kids(kubectl: Kubectl) -> set[str]:
    return {k["kid"] for k in json.loads(kubectl("get", "--raw", "/openid/v1/jwks").stdout)["keys"]}


def test_discovery_is_served_as_in_a_real_cluster(kube: KubeCluster, kubectl: Kubectl, namespace: str) -> None:
    discovery = json.loads(kubectl("get", "--raw", "/.well-known/openid-configuration").stdout)
    assert discovery["issuer"] == SERVICE_ACCOUNT_ISSUER
    assert discovery["jwks_uri"].endswith("/openid/v1/jwks")
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    jwks = json.loads(kubectl("get", "--raw", "/openid/v1/jwks").stdout)
    assert all(set(k) >= {"kty", "kid", "alg", "use"} and "d" not in k for k in jwks["keys"])
    # Any ServiceAccount may read discovery (the bootstrap binding of system:service-account-issuer-discovery).
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    token = _token(kubectl, namespace, AUDIENCE)
    header, claims = _claims_and_header(token)
    assert claims["iss"] == SERVICE_ACCOUNT_ISSUER
    assert claims["aud"] == [AUDIENCE]
    assert claims["sub"] == f"system:serviceaccount:{namespace}:app"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "app"
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    api = Api(kube)
    assert api.get("/.well-known/openid-configuration", _token(kubectl, namespace)).status_code == 200
    assert api.get("/.well-known/openid-configuration", "not-a-token").status_code == 401


def test_restarts_add_switch_and_remove_signing_keys(
    service_account_keys: KubeCluster, kubectl: Kubectl, namespace: str
) -> None:
    kube = service_account_keys
    api = Api(kube)
    kubectl("create", "serviceaccount", "app", "-n", namespace)
    kubectl("create", "configmap", "kept", "-n", namespace, "--from-literal=a=b")
    old = kube.signing_key
    old_kid = service_account_kid(old)
    assert _jwks_kids(kubectl) == {service_account_kid(k) for k in kube.verification_keys}
    old_token = _token(kubectl, namespace)
    assert _claims_and_header(_token(kubectl, namespace, AUDIENCE))[0]["kid"] == old_kid

    new = kube.new_service_account_key("EC")
    new_kid = service_account_kid(new)
    assert new_kid != old_kid

    # 1. An additional verification key: the JWKS lists both; tokens are still signed by the old key.
    kube.restart_apiserver(signing_key=old, verification_keys=[old, new])
    assert _jwks_kids(kubectl) == {old_kid, new_kid}
    assert _claims_and_header(_token(kubectl, namespace, AUDIENCE))[0]["kid"] == old_kid
    assert api.get("/.well-known/openid-configuration", old_token).status_code == 200

    # 2. The new key signs: new tokens carry its kid (ES256); old tokens still authenticate.
    kube.restart_apiserver(signing_key=new, verification_keys=[old, new])
    header, _ = _claims_and_header(_token(kubectl, namespace, AUDIENCE))
    assert (header["kid"], header["alg"]) == (new_kid, "ES256")
    assert _jwks_kids(kubectl) == {old_kid, new_kid}
    discovery = json.loads(kubectl("get", "--raw", "/.well-known/openid-configuration").stdout)
    assert "ES256" in discovery["id_token_signing_alg_values_supported"]
    assert api.get("/.well-known/openid-configuration", old_token).status_code == 200

    # 3. The old key removed: the JWKS has only the new one, and a token the old key signed is refused.
    kube.restart_apiserver(signing_key=new)
    assert _jwks_kids(kubectl) == {new_kid}
    assert kube.verification_keys == (new,)
    assert api.get("/.well-known/openid-configuration", old_token).status_code == 401
    assert api.get("/.well-known/openid-configuration", _token(kubectl, namespace)).status_code == 200
    # etcd and its data survived every restart.
    assert kubectl("get", "configmap", "kept", "-n", namespace, "-o", "jsonpath={.data.a}").stdout == "b"


def test_restart_refuses_a_missing_key_file(service_account_keys: KubeCluster, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ServiceAccount key file"):
        service_account_keys.restart_apiserver(signing_key=tmp_path / "absent.key")
    assert service_account_keys.verification_keys  # the running apiserver was left alone
