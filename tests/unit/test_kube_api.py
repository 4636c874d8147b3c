"""The operator's Kubernetes client against an in-process transport: paths, bodies, errors, re-login."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from openai_operator.errors import ConflictError, NotFoundError, PermanentError, TransientError
from openai_operator.k8s.api import (
    STRATEGIC_MERGE_PATCH,
    KubeApi,
    KubeConnection,
    KubeStatusError,
    resource_path,
)
from openai_operator.k8s.errors import classify_api_exception

pytestmark = pytest.mark.unit


def test_paths_of_the_core_api_and_of_groups() -> None:
    assert resource_path("", "v1", "secrets", namespace="team", name="s") == "/api/v1/namespaces/team/secrets/s"
    assert resource_path("", "v1", "namespaces", name="kube-system") == "/api/v1/namespaces/kube-system"
    assert resource_path("openai.operator.dev", "v1alpha1", "openaikeys", namespace="a", name="k",
                         subresource="status") == "/apis/openai.operator.dev/v1alpha1/namespaces/a/openaikeys/k/status"
    assert resource_path("openai.operator.dev", "v1alpha1", "openaiprojects") == \
        "/apis/openai.operator.dev/v1alpha1/openaiprojects"


def _api(handler: Callable[[httpx.Request], httpx.Response], tokens: list[str]) -> KubeApi:
    def connect() -> KubeConnection:
        tokens.append(f"t{len(tokens) + 1}")
        return KubeConnection("https://apiserver.test", headers={"Authorization": f"Bearer {tokens[-1]}"})
    return KubeApi(connect, transport=httpx.MockTransport(handler))


def _status(code: int, reason: str, message: str = "") -> httpx.Response:
    return httpx.Response(code, json={"kind": "Status", "status": "Failure", "reason": reason, "message": message})


def test_a_request_sends_json_with_the_patch_type_and_returns_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"metadata": {"name": "d"}})

    async def run() -> dict[str, object]:
        api = _api(handler, [])
        try:
            return await api.patch("/apis/apps/v1/namespaces/a/deployments/d", {"spec": {}},
                                   content_type=STRATEGIC_MERGE_PATCH)
        finally:
            await api.aclose()

    assert asyncio.run(run()) == {"metadata": {"name": "d"}}
    (request,) = seen
    assert request.method == "PATCH"
    assert request.headers["Content-Type"] == STRATEGIC_MERGE_PATCH
    assert request.headers["Authorization"] == "Bearer t1"
    assert json.loads(request.content) == {"spec": {}}


def test_a_401_logs_in_again_once_and_retries_with_the_new_credentials() -> None:
    auth: list[str] = []
    accepted = {"Bearer t2"}

    def handler(request: httpx.Request) -> httpx.Response:
        auth.append(request.headers["Authorization"])
        if request.headers["Authorization"] in accepted:
            return httpx.Response(200, json={"kind": "Namespace"})
        return _status(401, "Unauthorized")

    tokens: list[str] = []

    async def run() -> int:
        api = _api(handler, tokens)
        try:
            assert await api.get("/api/v1/namespaces/x") == {"kind": "Namespace"}
            accepted.clear()  # now every token is refused: one more login, then the 401 is the answer
            with pytest.raises(KubeStatusError) as refused:
                await api.get("/api/v1/namespaces/x")
            return refused.value.status
        finally:
            await api.aclose()

    assert asyncio.run(run()) == 401
    assert tokens == ["t1", "t2", "t3"]
    assert auth == ["Bearer t1", "Bearer t2", "Bearer t2", "Bearer t3"]


def test_errors_keep_the_status_and_reason_never_the_message() -> None:
    message = "Secret \"s\" is invalid: data[OPENAI_API_KEY]: sk-proj-SECRETSECRET"

    def handler(request: httpx.Request) -> httpx.Response:
        return {"/a": _status(404, "NotFound"), "/b": _status(409, "Conflict"),
                "/c": _status(422, "Invalid", message),
                "/d": httpx.Response(503, headers={"Retry-After": "7"}, text="busy")}[request.url.path]

    async def run() -> list[KubeStatusError]:
        api = _api(handler, [])
        errors = []
        try:
            assert await api.read("/a") is None
            for path in ("/b", "/c", "/d"):
                with pytest.raises(KubeStatusError) as caught:
                    await api.get(path)
                errors.append(caught.value)
        finally:
            await api.aclose()
        return errors

    conflict, invalid, busy = asyncio.run(run())
    assert (conflict.status, conflict.reason) == (409, "Conflict")
    assert (invalid.status, invalid.reason) == (422, "Invalid")
    assert "SECRET" not in str(invalid)
    assert "SECRET" not in repr(invalid.args)
    assert (busy.status, busy.reason, busy.retry_after) == (503, "Service Unavailable", "7")
    assert isinstance(classify_api_exception(conflict, "update", "Secret a/s", resource="secrets"), ConflictError)
    transient = classify_api_exception(busy, "get", "Secret a/s", resource="secrets")
    assert isinstance(transient, TransientError)
    assert transient.retry_after == 7.0
    assert isinstance(classify_api_exception(invalid, "create", "Secret a/s", resource="secrets"), PermanentError)
    missing = classify_api_exception(KubeStatusError(404, "NotFound"), "get", "Secret a/s", resource="secrets")
    assert isinstance(missing, NotFoundError)


def test_an_unreachable_apiserver_is_status_zero_and_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def run() -> KubeStatusError:
        api = _api(handler, [])
        try:
            with pytest.raises(KubeStatusError) as caught:
                await api.get("/api/v1/namespaces")
            return caught.value
        finally:
            await api.aclose()

    error = asyncio.run(run())
    assert error.status == 0
    assert "ConnectError" in error.reason
    classified = classify_api_exception(error, "get", "namespace x", resource="namespaces")
    assert isinstance(classified, TransientError)
    assert "unreachable" in classified.message
