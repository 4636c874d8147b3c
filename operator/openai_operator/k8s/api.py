"""The operator's Kubernetes API client: JSON over one pooled asyncio HTTP client (httpx).

The operator's own calls are a handful of REST verbs on a dozen paths, bodies in and out as plain
JSON dicts. The ``kubernetes`` package served them before, at a price the scale benchmark measured:
its generated models cost about 45 MB of the process (Kopf imports the package whenever it is
installed), it is synchronous (every call held a thread), and it turns every answer into model
objects only for the operator to turn them back into dicts. This client parses JSON and nothing
more, shares one connection pool between every task, and never holds a thread.

Credentials come from whoever builds the client (:class:`KubeConnection`): in the operator, the
same login Kopf uses (``handlers.lifecycle.login``). A 401 asks for them again once, so a projected
ServiceAccount token that rotated under a long-running operator is picked up.

Errors are :class:`KubeStatusError` with the status and the API's machine ``reason`` only: a
Status ``message`` or an echoed body can quote the object sent, Secret data included.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx

__all__ = ["MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "KubeApi", "KubeConnection", "KubeStatusError",
           "resource_path", "status_reason"]

MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"

USER_AGENT: Final = "openai-operator"

CONCURRENT_REQUESTS: Final = 12
"""Calls in flight to the apiserver, each on its own kept-alive connection; more wait their turn.

They wait on a semaphore, not in httpx's pool: the pool scans its whole queue of waiting requests,
and every connection, each time it hands one out, which at a thousand keys was a fifth of the
operator's CPU (the scale benchmark's profile). Twelve in flight keep the apiserver busy (a call
takes a few milliseconds) while the scan stays short: 1,000 keys converged in 51 s with 12 against
62 s with 32.
"""


@dataclass(frozen=True)
class KubeConnection:
    """Where the apiserver is and how to talk to it."""

    server: str
    verify: ssl.SSLContext | bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    """The ``Authorization`` header, when the credentials are a token or a password."""
    trust_env: bool = False


class KubeStatusError(Exception):
    """The apiserver answered ``status`` (``0``: it could not be reached); no body is kept."""

    def __init__(self, status: int, reason: str, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def resource_path(
    group: str, version: str, plural: str, *, namespace: str | None = None, name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a resource collection or object (``group`` ``""`` is the core API)."""
    parts = ["/api", version] if not group else ["/apis", group, version]
    if namespace is not None:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(plural)
    if name is not None:
        parts.append(quote(name, safe=""))
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


def status_reason(response: httpx.Response) -> str:
    """The Status object's ``reason`` (``NotFound``, ``Conflict``, …), else the HTTP reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    return str(reason) if isinstance(reason, str) and reason else response.reason_phrase


class KubeApi:
    """JSON requests to the apiserver, for any task of the event loop, on one connection pool."""

    def __init__(self, connect: Callable[[], KubeConnection], *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``connect`` is called now and again after a 401 (it may read files: it runs in a thread then)."""
        self._connect = connect
        connection = connect()
        self._http = httpx.AsyncClient(
            base_url=connection.server.rstrip("/"),
            verify=connection.verify,
            # JSON, or what a non-resource URL serves instead (the issuer's key set is jwk-set+json).
            # The User-Agent names the operator in the apiserver's audit log and, as the field manager of
            # what it writes, in every object's managedFields.
            headers={**connection.headers, "Accept": "application/json, */*;q=0.8", "User-Agent": USER_AGENT},
            trust_env=connection.trust_env,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0), pool=None),
            limits=httpx.Limits(max_connections=CONCURRENT_REQUESTS, max_keepalive_connections=CONCURRENT_REQUESTS),
            transport=transport,
        )
        self._relogin = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None, content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One call; the answer's JSON object (``{}`` when it has none). Raises :class:`KubeStatusError`."""
        headers = {"Content-Type": content_type} if body is not None else None
        for attempt in (1, 2):
            try:
                async with self._in_flight:
                    response = await self._http.request(method, path, json=body, params=params, headers=headers)
            except httpx.TransportError as error:
                raise KubeStatusError(0, f"the apiserver is unreachable ({type(error).__name__})") from None
            if response.status_code == 401 and attempt == 1:
                await self._refresh_credentials()
                continue
            if response.status_code >= 400:
                raise KubeStatusError(response.status_code, status_reason(response),
                                      response.headers.get("Retry-After"))
            break
        if not response.content:
            return {}
        try:
            found = response.json()
        except ValueError:
            raise KubeStatusError(0, f"{method} {path}: the answer is not JSON") from None
        return found if isinstance(found, dict) else {"items": found}

    async def _refresh_credentials(self) -> None:
        async with self._relogin:
            connection = await asyncio.to_thread(self._connect)
            self._http.headers.update(connection.headers)

    async def get(self, path: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return await self.request("GET", path, params=params)

    async def read(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or ``None`` when there is none (404)."""
        try:
            return await self.request("GET", path)
        except KubeStatusError as error:
            if error.status == 404:
                return None
            raise

    async def create(self, collection: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", collection, body=body)

    async def replace(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A PUT: with ``metadata.resourceVersion`` in ``body``, a compare-and-swap (409 when it moved)."""
        return await self.request("PUT", path, body=body)

    async def patch(self, path: str, body: Mapping[str, Any], *, content_type: str = MERGE_PATCH) -> dict[str, Any]:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("DELETE", path, body=body)
