"""The tests' synchronous Kubernetes client: JSON calls to the test bed's apiserver over httpx.

For what ``kubectl`` is too slow for (polling a Secret many times a second, creating hundreds of
objects). Paths come from the operator's :func:`~openai_operator.k8s.api.resource_path`; errors are
its :class:`~openai_operator.k8s.api.KubeStatusError`, so a test sees what the operator sees.
"""

from __future__ import annotations

import base64
import ssl
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from openai_operator.k8s.api import MERGE_PATCH, KubeConnection, KubeStatusError, resource_path, status_reason

__all__ = ["KubeRest", "KubeStatusError", "connection", "resource_path", "secret_path", "secrets_path"]


def secrets_path(namespace: str) -> str:
    return resource_path("", "v1", "secrets", namespace=namespace)


def secret_path(namespace: str, name: str) -> str:
    return resource_path("", "v1", "secrets", namespace=namespace, name=name)


def connection(kubeconfig: Path) -> KubeConnection:
    """Server, TLS trust and token of the kubeconfig's current context (the test bed writes a token)."""
    config = yaml.safe_load(kubeconfig.read_text())
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    if "certificate-authority-data" in cluster:
        tls = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    else:
        tls = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
    return KubeConnection(cluster["server"], verify=tls, headers={"Authorization": f"Bearer {user['token']}"})


class KubeRest:
    """Blocking JSON requests to the apiserver; an answer of 400 or more raises :class:`KubeStatusError`."""

    def __init__(self, kubeconfig: Path, *, timeout: float = 30.0) -> None:
        found = connection(kubeconfig)
        self._http = httpx.Client(base_url=found.server, verify=found.verify, headers=dict(found.headers),
                                  timeout=timeout)
        # Readers handed to a polling thread are dropped, not closed: close the pool when they go.
        weakref.finalize(self, self._http.close)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KubeRest:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
                params: Mapping[str, str] | None = None, content_type: str = "application/json") -> dict[str, Any]:
        headers = {"Content-Type": content_type} if body is not None else None
        try:
            response = self._http.request(method, path, json=body, params=params, headers=headers)
        except httpx.TransportError as error:
            raise KubeStatusError(0, type(error).__name__) from None
        if response.status_code >= 400:
            raise KubeStatusError(response.status_code, status_reason(response))
        return response.json() if response.content else {}

    def get(self, path: str, **params: str) -> dict[str, Any]:
        return self.request("GET", path, params=params or None)

    def read(self, path: str) -> dict[str, Any] | None:
        """The object, or ``None`` when there is none."""
        try:
            return self.get(path)
        except KubeStatusError as error:
            if error.status == 404:
                return None
            raise

    def create(self, collection: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", collection, body=body)

    def replace(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PUT", path, body=body)

    def patch(self, path: str, body: Mapping[str, Any], *, content_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self.request("PATCH", path, body=body, content_type=content_type)

    def delete(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("DELETE", path, body=body)
