"""Async client for the OpenAI Admin API (and the one data-plane call the operator needs).

The client is built at startup around an injected ``httpx.AsyncClient`` (tests pass one with a
``MockTransport``) and owns no global state; the caller owns and closes the ``httpx`` client.

What it adds over raw HTTP, and why:

* **Typed results** (:mod:`.models`): the reconciler works with frozen dataclasses, and a newly
  minted key's value arrives as a :class:`~openai_operator.secretvalue.SecretValue`.
* **Domain errors** (:mod:`.errors`): every failure is a Transient/Permanent/NotFound/Conflict
  error from :mod:`openai_operator.errors`, so handlers need one mapping to Kopf.
* **Retries** (:mod:`.retry`): bounded, jittered, honouring ``Retry-After``; non-idempotent creates
  are retried only when the server provably did not act on them, because a blind retry of
  ``POST …/service_accounts`` would mint a second key whose value nobody stores. The operator's
  find-or-create by deterministic name covers the ambiguous cases.
* **Paging** over all three list envelopes (``last_id``/``has_more``, ``next``, ``next_page``).
* **One log line per attempt** (operation, method, path *template*, status, duration, attempt,
  ``request_id``) and a metrics callback; never headers, bodies or concrete URLs.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote

import httpx
import structlog

from openai_operator.openai.budget import RequestBudget
from openai_operator.openai.errors import (
    ApiNotFoundError,
    ApiPermanentError,
    ApiTransientError,
    classify_response,
    classify_transport_error,
    parse_retry_after,
    unexpected_response,
)
from openai_operator.openai.models import (
    CostBucket,
    CreatedServiceAccount,
    FederationRule,
    Invite,
    IssuedKey,
    ModelPermissions,
    OrgUser,
    Project,
    ProjectApiKey,
    ProjectUser,
    RateLimit,
    ServiceAccount,
    ServiceTierSettings,
    SpendAlert,
    SpendLimit,
    WorkloadIdentityProvider,
)
from openai_operator.openai.retry import Failure, RetryPolicy
from openai_operator.secretvalue import SecretValue

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "AdminClient",
    "RequestObserver",
    "SupportsGetSecretValue",
    "new_http_client",
]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
"""Per-request timeouts: admin calls are small; 30 s bounds a hung read, 10 s a dead endpoint."""

_MAX_PAGES: Final = 1000
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

JSONObject = Mapping[str, Any]
Query = list[tuple[str, str]]

_T = TypeVar("_T")

_log = structlog.stdlib.get_logger(__name__)


class RequestObserver(Protocol):
    """Metrics hook: called once per attempt (e.g. ``OperatorMetrics.observe_admin_request``).

    ``status`` is the HTTP status as a string, or the transport exception's class name.
    """

    def __call__(self, operation: str, status: str, duration_seconds: float, /) -> None: ...


class SupportsGetSecretValue(Protocol):
    """Anything holding a secret the pydantic way (``SecretStr``), accepted as the admin key."""

    def get_secret_value(self) -> str: ...


def _reveal(secret: SecretValue | SupportsGetSecretValue) -> str:
    if isinstance(secret, SecretValue):
        return secret.reveal()
    return secret.get_secret_value()


CONNECTIONS = 10
"""Connections to OpenAI, and calls in flight: more wait on :class:`AdminClient`'s semaphore.

Not in httpx's pool: it scans its whole queue of waiting requests each time it hands out a
connection, which with ten thousand keys issuing at once made every call cost O(keys) of CPU and
the convergence quadratic (the scale benchmark caught it in a py-spy dump)."""


def new_http_client(
    *, timeout: httpx.Timeout = DEFAULT_TIMEOUT, max_connections: int = CONNECTIONS
) -> httpx.AsyncClient:
    """Build the ``httpx.AsyncClient`` the operator hands to :class:`AdminClient` at startup.

    A small connection pool bounds concurrency toward OpenAI (many keys reconciling at once share
    it); redirects are not followed, so the ``Authorization`` header never goes anywhere else.
    """
    return httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        headers={"User-Agent": "openai-operator"},
    )


@dataclass(frozen=True, slots=True)
class _Call:
    """One logical API call (possibly several attempts)."""

    operation: str
    method: str
    template: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Query = field(default_factory=list)
    body: JSONObject | None = None
    idempotent: bool = True
    data_plane: bool = False
    not_found_expected: bool = False


class AdminClient:
    """The OpenAI Admin API, as the operator uses it.

    Args:
        http: the shared ``httpx.AsyncClient`` (see :func:`new_http_client`); not closed here.
        admin_key: the organisation's admin key (``sk-admin-…``) as a ``SecretValue`` or anything with
            ``get_secret_value()``. Sent only as this client's ``Authorization`` header.
        base_url: API root including ``/v1``; the emulator's URL in tests and the demo.
        retry: bounds and backoff; see :mod:`openai_operator.openai.retry`.
        timeout: per-request timeouts (override the ``httpx`` client's).
        observer: metrics hook called once per attempt.
        budget: the Admin API request budget shared with every other user of this organisation's
            admin key in the process (see :mod:`openai_operator.openai.budget`); every Admin API
            attempt waits for it, and a 429's ``Retry-After`` holds it for everyone. Data-plane
            calls (key verification) are limited per project by OpenAI and do not draw on it.
        sleep, rand, clock: injectable for tests (no real waiting, deterministic jitter).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        admin_key: SecretValue | SupportsGetSecretValue,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = DEFAULT_TIMEOUT,
        observer: RequestObserver | None = None,
        budget: RequestBudget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        max_in_flight: int = CONNECTIONS,
    ) -> None:
        self._http = http
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._admin_key = admin_key
        self._base_url = base_url.rstrip("/")
        self._retry = retry if retry is not None else RetryPolicy()
        self._timeout = timeout
        self._observer = observer
        self._budget = budget if budget is not None else RequestBudget(clock=clock, sleep=sleep)
        self._sleep = sleep
        self._rand = rand
        self._clock = clock
        self._server_offset: timedelta | None = None

    def server_time(self, local: datetime) -> datetime:
        """``local`` (a time on this machine's clock) on OpenAI's clock, as its last ``Date`` header showed it.

        Budget periods are OpenAI's calendar months: near a month boundary a skewed local clock would
        sum the wrong month. With no response seen yet this is ``local``. Resolution: one second.
        """
        return local + self._server_offset if self._server_offset is not None else local

    def _note_server_date(self, response: httpx.Response) -> None:
        raw = response.headers.get("date")
        if not raw:
            return
        try:
            server = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return
        if server.tzinfo is not None:
            self._server_offset = server - datetime.now(UTC)

    def __repr__(self) -> str:
        return f"AdminClient(base_url={self._base_url!r})"

    # ----------------------------------------------------------------------------------- projects

    async def list_projects(self, *, include_archived: bool = False, page_size: int = 100) -> list[Project]:
        """Every project in the organisation (all pages); archived ones only when asked."""
        query: Query = [("limit", str(page_size)), ("include_archived", _bool(include_archived))]
        items = self._paginate(_Call("list_projects", "GET", "/organization/projects", query=query))
        return [_parse("list_projects", Project.from_api, item) async for item in items]

    async def get_project(self, project_id: str) -> Project:
        """One project by id; :class:`~.errors.ApiNotFoundError` if there is none."""
        call = _Call("get_project", "GET", "/organization/projects/{project_id}", {"project_id": project_id})
        return await self._fetch(call, Project.from_api)

    async def create_project(self, name: str) -> Project:
        """Create a project. Not retried on ambiguous failures: look it up by name before retrying."""
        call = _Call(
            "create_project", "POST", "/organization/projects", body={"name": name}, idempotent=False
        )
        return await self._fetch(call, Project.from_api)

    async def modify_project(self, project_id: str, *, name: str | None = None) -> Project:
        """Change a project's mutable fields (today: its name). Idempotent: it sets a value."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        call = _Call(
            "modify_project",
            "POST",
            "/organization/projects/{project_id}",
            {"project_id": project_id},
            body=body,
        )
        return await self._fetch(call, Project.from_api)

    async def rename_project(self, project_id: str, name: str) -> Project:
        """Shorthand for :meth:`modify_project` with a new name."""
        return await self.modify_project(project_id, name=name)

    async def archive_project(self, project_id: str) -> Project:
        """Archive a project (OpenAI has no delete). Idempotent in effect, so retried normally."""
        call = _Call(
            "archive_project",
            "POST",
            "/organization/projects/{project_id}/archive",
            {"project_id": project_id},
        )
        return await self._fetch(call, Project.from_api)

    # --------------------------------------------------------------------------- service accounts

    async def list_service_accounts(self, project_id: str, *, page_size: int = 100) -> list[ServiceAccount]:
        """Every service account of a project (all pages): the inventory's one paged list."""
        call = _Call(
            "list_service_accounts",
            "GET",
            "/organization/projects/{project_id}/service_accounts",
            {"project_id": project_id},
            query=[("limit", str(page_size))],
        )
        return [_parse(call.operation, ServiceAccount.from_api, i) async for i in self._paginate(call)]

    async def get_service_account(self, project_id: str, service_account_id: str) -> ServiceAccount:
        """One service account; :class:`~.errors.ApiNotFoundError` if it is gone."""
        call = _Call(
            "get_service_account",
            "GET",
            "/organization/projects/{project_id}/service_accounts/{service_account_id}",
            {"project_id": project_id, "service_account_id": service_account_id},
        )
        return await self._fetch(call, ServiceAccount.from_api)

    async def create_service_account(
        self, project_id: str, name: str, *, expires_in_seconds: int | None = None
    ) -> CreatedServiceAccount:
        """Create a service account and return it with its first key, whose value comes only now.

        ``expires_in_seconds`` sets the initial key's lifetime (the operator always sets one as a
        backstop). Not retried on ambiguous failures; see the module docstring.
        """
        body: dict[str, Any] = {"name": name}
        if expires_in_seconds is not None:
            body["expires_in_seconds"] = expires_in_seconds
        call = _Call(
            "create_service_account",
            "POST",
            "/organization/projects/{project_id}/service_accounts",
            {"project_id": project_id},
            body=body,
            idempotent=False,
        )
        return await self._fetch(call, CreatedServiceAccount.from_api)

    async def rename_service_account(self, project_id: str, service_account_id: str, name: str) -> ServiceAccount:
        """Give a service account a new name (``POST …/service_accounts/{id}``, 2026-07+); its keys stay valid."""
        call = _Call(
            "rename_service_account",
            "POST",
            "/organization/projects/{project_id}/service_accounts/{service_account_id}",
            {"project_id": project_id, "service_account_id": service_account_id},
            body={"name": name},
        )
        return await self._fetch(call, ServiceAccount.from_api)

    async def delete_service_account(self, project_id: str, service_account_id: str) -> bool:
        """Delete a service account, which revokes its keys. ``False`` if it was already gone."""
        call = _Call(
            "delete_service_account",
            "DELETE",
            "/organization/projects/{project_id}/service_accounts/{service_account_id}",
            {"project_id": project_id, "service_account_id": service_account_id},
            not_found_expected=True,
        )
        return await self._delete(call)

    async def create_service_account_key(
        self,
        project_id: str,
        service_account_id: str,
        *,
        name: str | None = None,
        scopes: Sequence[str] | None = None,
        expires_in_seconds: int | None = None,
    ) -> IssuedKey:
        """Mint an extra key for an existing service account (``…/service_accounts/{id}/api_keys``).

        ``scopes=None`` leaves the API default (all permissions); ``[]`` also means all permissions;
        ``["api.all.read"]`` is read-only. Not retried on ambiguous failures.
        """
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if scopes is not None:
            body["scopes"] = list(scopes)
        if expires_in_seconds is not None:
            body["expires_in_seconds"] = expires_in_seconds
        call = _Call(
            "create_service_account_key",
            "POST",
            "/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys",
            {"project_id": project_id, "service_account_id": service_account_id},
            body=body,
            idempotent=False,
        )
        return await self._fetch(call, IssuedKey.from_api)

    # --------------------------------------------------------------------------- project API keys

    async def list_project_api_keys(
        self, project_id: str, *, owner_project_access: str | None = None, page_size: int = 100
    ) -> list[ProjectApiKey]:
        """Every API key of a project (all pages), redacted values only."""
        query: Query = [("limit", str(page_size))]
        if owner_project_access is not None:
            query.append(("owner_project_access", owner_project_access))
        call = _Call(
            "list_project_api_keys",
            "GET",
            "/organization/projects/{project_id}/api_keys",
            {"project_id": project_id},
            query=query,
        )
        return [_parse(call.operation, ProjectApiKey.from_api, i) async for i in self._paginate(call)]

    async def get_project_api_key(self, project_id: str, key_id: str) -> ProjectApiKey:
        """One project API key by id; :class:`~.errors.ApiNotFoundError` if it is gone."""
        call = _Call(
            "get_project_api_key",
            "GET",
            "/organization/projects/{project_id}/api_keys/{key_id}",
            {"project_id": project_id, "key_id": key_id},
        )
        return await self._fetch(call, ProjectApiKey.from_api)

    async def update_project_api_key(
        self,
        project_id: str,
        key_id: str,
        *,
        scopes: Sequence[str] | None = None,
        expires_in_seconds: int | None = None,
    ) -> ProjectApiKey:
        """Replace a key's scopes and/or reset its expiry (at least one must be given).

        Retried like any idempotent call: scopes are replaced, not merged. A retried expiry resets
        relative to the retry, which moves it by at most the retry delay.
        """
        body: dict[str, Any] = {}
        if scopes is not None:
            body["scopes"] = list(scopes)
        if expires_in_seconds is not None:
            body["expires_in_seconds"] = expires_in_seconds
        if not body:
            raise ValueError("update_project_api_key needs scopes or expires_in_seconds")
        call = _Call(
            "update_project_api_key",
            "POST",
            "/organization/projects/{project_id}/api_keys/{key_id}",
            {"project_id": project_id, "key_id": key_id},
            body=body,
        )
        return await self._fetch(call, ProjectApiKey.from_api)

    async def delete_project_api_key(self, project_id: str, key_id: str) -> bool:
        """Delete one key (not its service account). ``False`` if it was already gone."""
        call = _Call(
            "delete_project_api_key",
            "DELETE",
            "/organization/projects/{project_id}/api_keys/{key_id}",
            {"project_id": project_id, "key_id": key_id},
            not_found_expected=True,
        )
        return await self._delete(call)

    # -------------------------------------------------------------------------------- rate limits

    async def list_rate_limits(self, project_id: str, *, page_size: int = 100) -> list[RateLimit]:
        """Every per-model rate limit of a project (one pre-populated row per model)."""
        call = _Call(
            "list_rate_limits",
            "GET",
            "/organization/projects/{project_id}/rate_limits",
            {"project_id": project_id},
            query=[("limit", str(page_size))],
        )
        return [_parse(call.operation, RateLimit.from_api, i) async for i in self._paginate(call)]

    async def modify_rate_limit(
        self,
        project_id: str,
        rate_limit_id: str,
        *,
        max_requests_per_1_minute: int | None = None,
        max_tokens_per_1_minute: int | None = None,
        max_images_per_1_minute: int | None = None,
        max_audio_megabytes_per_1_minute: int | None = None,
        max_requests_per_1_day: int | None = None,
        batch_1_day_max_input_tokens: int | None = None,
    ) -> RateLimit:
        """Set some of a rate limit's fields; the ones left ``None`` are not sent (unchanged)."""
        fields = {
            "max_requests_per_1_minute": max_requests_per_1_minute,
            "max_tokens_per_1_minute": max_tokens_per_1_minute,
            "max_images_per_1_minute": max_images_per_1_minute,
            "max_audio_megabytes_per_1_minute": max_audio_megabytes_per_1_minute,
            "max_requests_per_1_day": max_requests_per_1_day,
            "batch_1_day_max_input_tokens": batch_1_day_max_input_tokens,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        call = _Call(
            "modify_rate_limit",
            "POST",
            "/organization/projects/{project_id}/rate_limits/{rate_limit_id}",
            {"project_id": project_id, "rate_limit_id": rate_limit_id},
            body=body,
        )
        return await self._fetch(call, RateLimit.from_api)

    # -------------------------------------------------------------------------------- spend limit

    async def get_spend_limit(self, project_id: str) -> SpendLimit | None:
        """The project's hard spend limit, or ``None`` when none is set (the API answers 404)."""
        call = _Call(
            "get_spend_limit",
            "GET",
            "/organization/projects/{project_id}/spend_limit",
            {"project_id": project_id},
            not_found_expected=True,
        )
        try:
            return await self._fetch(call, SpendLimit.from_api)
        except ApiNotFoundError:
            return None

    async def set_spend_limit(
        self, project_id: str, threshold_cents: int, *, currency: str = "USD", interval: str = "month"
    ) -> SpendLimit:
        """Create or replace the project's hard spend limit (integer cents; USD/month only today)."""
        if threshold_cents < 1:
            raise ValueError("threshold_cents must be at least 1")
        call = _Call(
            "set_spend_limit",
            "POST",
            "/organization/projects/{project_id}/spend_limit",
            {"project_id": project_id},
            body={"threshold_amount": threshold_cents, "currency": currency, "interval": interval},
        )
        return await self._fetch(call, SpendLimit.from_api)

    async def delete_spend_limit(self, project_id: str) -> bool:
        """Remove the project's hard spend limit. ``False`` if there was none."""
        call = _Call(
            "delete_spend_limit",
            "DELETE",
            "/organization/projects/{project_id}/spend_limit",
            {"project_id": project_id},
            not_found_expected=True,
        )
        return await self._delete(call)

    # ------------------------------------------------------------------------------- spend alerts

    async def list_spend_alerts(self, project_id: str, *, page_size: int = 100) -> list[SpendAlert]:
        """Every spend alert of a project, oldest first (the API's default order)."""
        call = _Call(
            "list_spend_alerts",
            "GET",
            "/organization/projects/{project_id}/spend_alerts",
            {"project_id": project_id},
            query=[("limit", str(page_size))],
        )
        return [_parse(call.operation, SpendAlert.from_api, i) async for i in self._paginate(call)]

    async def create_spend_alert(
        self, project_id: str, threshold_cents: int, recipients: Sequence[str], *,
        subject_prefix: str | None = None, currency: str = "USD", interval: str = "month",
    ) -> SpendAlert:
        """Create an email spend alert at ``threshold_cents`` this month.

        Not retried on ambiguous failures: a retried create whose first attempt landed would leave
        a second alert that nobody recorded.
        """
        call = _Call(
            "create_spend_alert",
            "POST",
            "/organization/projects/{project_id}/spend_alerts",
            {"project_id": project_id},
            body=_alert_body(threshold_cents, recipients, subject_prefix, currency, interval),
            idempotent=False,
        )
        return await self._fetch(call, SpendAlert.from_api)

    async def update_spend_alert(
        self, project_id: str, alert_id: str, threshold_cents: int, recipients: Sequence[str], *,
        subject_prefix: str | None = None, currency: str = "USD", interval: str = "month",
    ) -> SpendAlert:
        """Replace a spend alert's settings (the API takes the full body, not a partial patch)."""
        call = _Call(
            "update_spend_alert",
            "POST",
            "/organization/projects/{project_id}/spend_alerts/{alert_id}",
            {"project_id": project_id, "alert_id": alert_id},
            body=_alert_body(threshold_cents, recipients, subject_prefix, currency, interval),
        )
        return await self._fetch(call, SpendAlert.from_api)

    async def delete_spend_alert(self, project_id: str, alert_id: str) -> bool:
        """Delete a spend alert. ``False`` if it was already gone."""
        call = _Call(
            "delete_spend_alert",
            "DELETE",
            "/organization/projects/{project_id}/spend_alerts/{alert_id}",
            {"project_id": project_id, "alert_id": alert_id},
            not_found_expected=True,
        )
        return await self._delete(call)

    # --------------------------------------------------------------- project users and invites

    async def list_project_users(self, project_id: str, *, page_size: int = 100) -> list[ProjectUser]:
        """Every user of a project (all pages)."""
        call = _Call(
            "list_project_users",
            "GET",
            "/organization/projects/{project_id}/users",
            {"project_id": project_id},
            query=[("limit", str(page_size))],
        )
        return [_parse(call.operation, ProjectUser.from_api, i) async for i in self._paginate(call)]

    async def add_project_user(self, project_id: str, user_id: str, role: str) -> ProjectUser:
        """Add an organisation user to a project. Not retried blind: a retry after a lost answer
        would be refused as "already a member" and hide that the first attempt worked."""
        call = _Call(
            "add_project_user",
            "POST",
            "/organization/projects/{project_id}/users",
            {"project_id": project_id},
            body={"user_id": user_id, "role": role},
            idempotent=False,
        )
        return await self._fetch(call, ProjectUser.from_api)

    async def update_project_user(self, project_id: str, user_id: str, role: str) -> ProjectUser:
        """Change a project user's role (``owner`` or ``member``)."""
        call = _Call(
            "update_project_user",
            "POST",
            "/organization/projects/{project_id}/users/{user_id}",
            {"project_id": project_id, "user_id": user_id},
            body={"role": role},
        )
        return await self._fetch(call, ProjectUser.from_api)

    async def remove_project_user(self, project_id: str, user_id: str) -> bool:
        """Remove a user from a project (not from the organisation). ``False`` if already gone."""
        call = _Call(
            "remove_project_user",
            "DELETE",
            "/organization/projects/{project_id}/users/{user_id}",
            {"project_id": project_id, "user_id": user_id},
            not_found_expected=True,
        )
        return await self._delete(call)

    async def list_org_users(self, *, emails: Sequence[str] = (), page_size: int = 100) -> list[OrgUser]:
        """Organisation users, all pages; only those with one of ``emails`` when given."""
        query: Query = [("limit", str(page_size))] + [("emails[]", e) for e in emails]
        call = _Call("list_org_users", "GET", "/organization/users", query=query)
        return [_parse(call.operation, OrgUser.from_api, i) async for i in self._paginate(call)]

    async def list_invites(self, *, page_size: int = 100) -> list[Invite]:
        """Every invite of the organisation (all pages, any status)."""
        call = _Call("list_invites", "GET", "/organization/invites", query=[("limit", str(page_size))])
        return [_parse(call.operation, Invite.from_api, i) async for i in self._paginate(call)]

    async def create_invite(
        self, email: str, *, role: str = "reader", projects: Mapping[str, str] | None = None
    ) -> Invite:
        """Invite ``email`` to the organisation with ``role``, and to ``projects`` (id → role) on
        acceptance. Not retried blind: a second invite would be refused or duplicated."""
        body: dict[str, Any] = {"email": email, "role": role}
        if projects is not None:
            body["projects"] = [{"id": pid, "role": prole} for pid, prole in projects.items()]
        call = _Call("create_invite", "POST", "/organization/invites", body=body, idempotent=False)
        return await self._fetch(call, Invite.from_api)

    async def delete_invite(self, invite_id: str) -> bool:
        """Delete an invite that was not accepted. ``False`` if it was already gone."""
        call = _Call(
            "delete_invite",
            "DELETE",
            "/organization/invites/{invite_id}",
            {"invite_id": invite_id},
            not_found_expected=True,
        )
        return await self._delete(call)

    # ---------------------------------------------------------- model permissions, service tiers

    async def get_model_permissions(self, project_id: str) -> ModelPermissions:
        """The project's model allow or deny list (an empty deny list when none is set)."""
        call = _Call(
            "get_model_permissions",
            "GET",
            "/organization/projects/{project_id}/model_permissions",
            {"project_id": project_id},
        )
        return await self._fetch(call, ModelPermissions.from_api)

    async def set_model_permissions(self, project_id: str, mode: str, model_ids: Sequence[str]) -> ModelPermissions:
        """Replace the project's model policy (``allow_list`` or ``deny_list``)."""
        call = _Call(
            "set_model_permissions",
            "POST",
            "/organization/projects/{project_id}/model_permissions",
            {"project_id": project_id},
            body={"mode": mode, "model_ids": list(model_ids)},
        )
        return await self._fetch(call, ModelPermissions.from_api)

    async def delete_model_permissions(self, project_id: str) -> bool:
        """Remove the project's model policy (every model allowed again). ``False`` if none was set."""
        call = _Call(
            "delete_model_permissions",
            "DELETE",
            "/organization/projects/{project_id}/model_permissions",
            {"project_id": project_id},
            not_found_expected=True,
        )
        return await self._delete(call)

    async def get_service_tier_settings(self, project_id: str) -> ServiceTierSettings:
        """The project's default and enabled service tiers."""
        call = _Call(
            "get_service_tier_settings",
            "GET",
            "/organization/projects/{project_id}/service_tier_settings",
            {"project_id": project_id},
        )
        return await self._fetch(call, ServiceTierSettings.from_api)

    async def update_service_tier_settings(
        self, project_id: str, *, default: str | None = None, enabled_tiers: str | Sequence[str] | None = None
    ) -> ServiceTierSettings:
        """Change the default and/or enabled tiers atomically; a field left ``None`` keeps its value."""
        body: dict[str, Any] = {}
        if default is not None:
            body["default"] = default
        if enabled_tiers is not None:
            body["enabled_tiers"] = enabled_tiers if isinstance(enabled_tiers, str) else list(enabled_tiers)
        if not body:
            raise ValueError("update_service_tier_settings needs default or enabled_tiers")
        call = _Call(
            "update_service_tier_settings",
            "POST",
            "/organization/projects/{project_id}/service_tier_settings",
            {"project_id": project_id},
            body=body,
        )
        return await self._fetch(call, ServiceTierSettings.from_api)

    # -------------------------------------------------------------------------------------- costs

    async def costs(
        self,
        *,
        start_time: datetime | int,
        end_time: datetime | int | None = None,
        group_by: Sequence[str] = (),
        project_ids: Sequence[str] = (),
        api_key_ids: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[CostBucket]:
        """Daily cost buckets in ``[start_time, end_time)``, following ``next_page`` to the end.

        ``group_by`` takes ``project_id``, ``api_key_id`` and/or ``line_item``. ``limit`` is buckets
        per page (API default 7, max 180); pass 31 to read a month in one page. Arrays are sent as
        ``name[]=v`` like the official SDK does (the emulator accepts both spellings).
        """
        query: Query = [("start_time", str(_unix(start_time))), ("bucket_width", "1d")]
        if end_time is not None:
            query.append(("end_time", str(_unix(end_time))))
        query += [("group_by[]", g) for g in group_by]
        query += [("project_ids[]", p) for p in project_ids]
        query += [("api_key_ids[]", k) for k in api_key_ids]
        if limit is not None:
            query.append(("limit", str(limit)))
        call = _Call("costs", "GET", "/organization/costs", query=query)
        return [_parse(call.operation, CostBucket.from_api, i) async for i in self._paginate(call)]

    # --------------------------------------------------------------------------------- data plane

    async def verify_key(self, key: SecretValue) -> None:
        """Check that an issued key authenticates, by calling ``GET /v1/models`` with it.

        Returns normally when OpenAI accepts the key. That includes 403 (the key's scopes exclude
        listing models) and a 429 that persists through retries (rate limit or a project past its
        hard spend limit): OpenAI authenticates before it authorises or throttles, so both prove
        the key is live, and failing rotation because a project is over budget would be wrong.

        Raises :class:`~.errors.KeyRejectedError` (permanent) on 401 and the usual transient
        errors otherwise. The admin key is never sent on this call.
        """
        call = _Call("verify_key", "GET", "/models", data_plane=True)
        try:
            await self._send(call, auth=key.reveal())
        except ApiPermanentError as exc:
            if exc.status != 403:
                raise
            _log.info("openai.verify_key", outcome="authenticated_without_model_access", status=403)
        except ApiTransientError as exc:
            if exc.status != 429:
                raise
            _log.info("openai.verify_key", outcome="authenticated_but_throttled", status=429)

    # ----------------------------------------------------------- workload identity federation

    async def list_identity_providers(self, *, page_size: int = 100) -> list[WorkloadIdentityProvider]:
        """Every workload identity provider of the organisation (all pages)."""
        call = _Call("list_identity_providers", "GET", "/organization/workload_identity_providers",
                     query=[("limit", str(page_size))])
        return [_parse(call.operation, WorkloadIdentityProvider.from_api, i) async for i in self._paginate(call)]

    async def get_identity_provider(self, provider_id: str) -> WorkloadIdentityProvider:
        """One provider; :class:`~.errors.ApiNotFoundError` if it is gone."""
        call = _Call("get_identity_provider", "GET", "/organization/workload_identity_providers/{provider_id}",
                     {"provider_id": provider_id})
        return await self._fetch(call, WorkloadIdentityProvider.from_api)

    async def create_identity_provider(
        self, *, name: str, issuer: str, audience: str, jwks: Mapping[str, Any], description: str | None = None,
    ) -> WorkloadIdentityProvider:
        """Register an OIDC issuer with its key set uploaded (``verification: uploaded_jwks``).

        Not retried on ambiguous failures: the caller finds a provider it made by its name first.
        """
        body: dict[str, Any] = {"name": name, "issuer": issuer, "audience": audience, "type": "oidc",
                                "enabled": True, "verification": {"type": "uploaded_jwks", "jwks": dict(jwks)}}
        if description is not None:
            body["description"] = description
        call = _Call("create_identity_provider", "POST", "/organization/workload_identity_providers",
                     body=body, idempotent=False)
        return await self._fetch(call, WorkloadIdentityProvider.from_api)

    async def update_identity_provider(
        self, provider_id: str, *, jwks: Mapping[str, Any] | None = None, audience: str | None = None,
        issuer: str | None = None, enabled: bool | None = None,
    ) -> WorkloadIdentityProvider:
        """Change a provider (``POST …/{id}``, partial: omitted fields are kept); the JWKS re-upload."""
        body: dict[str, Any] = {}
        if jwks is not None:
            body["verification"] = {"type": "uploaded_jwks", "jwks": dict(jwks)}
        if audience is not None:
            body["audience"] = audience
        if issuer is not None:
            body["issuer"] = issuer
        if enabled is not None:
            body["enabled"] = enabled
        call = _Call("update_identity_provider", "POST", "/organization/workload_identity_providers/{provider_id}",
                     {"provider_id": provider_id}, body=body)
        return await self._fetch(call, WorkloadIdentityProvider.from_api)

    async def delete_identity_provider(self, provider_id: str) -> bool:
        """Delete a provider (OpenAI requires its rules to be deleted first). ``False`` if already gone."""
        call = _Call("delete_identity_provider", "DELETE", "/organization/workload_identity_providers/{provider_id}",
                     {"provider_id": provider_id}, not_found_expected=True)
        return await self._delete(call)

    async def list_federation_rules(
        self, provider_id: str, *, service_account_id: str | None = None, page_size: int = 100,
    ) -> list[FederationRule]:
        """Every rule of a provider (all pages), or only those of one service account."""
        query: Query = [("limit", str(page_size))]
        if service_account_id is not None:
            query.append(("service_account_id", service_account_id))
        call = _Call("list_federation_rules", "GET",
                     "/organization/workload_identity_providers/{provider_id}/federation_rules",
                     {"provider_id": provider_id}, query=query)
        return [_parse(call.operation, FederationRule.from_api, i) async for i in self._paginate(call)]

    async def get_federation_rule(self, provider_id: str, rule_id: str) -> FederationRule:
        """One rule; :class:`~.errors.ApiNotFoundError` if it (or its provider) is gone."""
        call = _Call("get_federation_rule", "GET",
                     "/organization/workload_identity_providers/{provider_id}/federation_rules/{rule_id}",
                     {"provider_id": provider_id, "rule_id": rule_id})
        return await self._fetch(call, FederationRule.from_api)

    async def create_federation_rule(
        self, provider_id: str, *, project_id: str, service_account_id: str,
        attribute_matchers: Mapping[str, str | bool | int | float], scopes: Sequence[str] | None = None,
        name: str | None = None,
    ) -> FederationRule:
        """Map claims to a service account; ``scopes=None`` is ``service_account_default`` permissions.

        Not retried on ambiguous failures: the caller looks for the rule by service account first.
        """
        body: dict[str, Any] = {"project_id": project_id, "service_account_id": service_account_id,
                                "attribute_matchers": dict(attribute_matchers), "enabled": True,
                                "permissions": _permissions(scopes)}
        if name is not None:
            body["name"] = name
        call = _Call("create_federation_rule", "POST",
                     "/organization/workload_identity_providers/{provider_id}/federation_rules",
                     {"provider_id": provider_id}, body=body, idempotent=False)
        return await self._fetch(call, FederationRule.from_api)

    async def update_federation_rule(
        self, provider_id: str, rule_id: str, *, attribute_matchers: Mapping[str, str | bool | int | float],
        scopes: Sequence[str] | None, enabled: bool = True,
    ) -> FederationRule:
        """Put a rule back to what it should be (matchers, permissions, enabled); ids are immutable."""
        body: dict[str, Any] = {"attribute_matchers": dict(attribute_matchers), "enabled": enabled,
                                "permissions": _permissions(scopes)}
        call = _Call("update_federation_rule", "POST",
                     "/organization/workload_identity_providers/{provider_id}/federation_rules/{rule_id}",
                     {"provider_id": provider_id, "rule_id": rule_id}, body=body)
        return await self._fetch(call, FederationRule.from_api)

    async def delete_federation_rule(self, provider_id: str, rule_id: str) -> bool:
        """Delete a rule. ``False`` if it was already gone."""
        call = _Call("delete_federation_rule", "DELETE",
                     "/organization/workload_identity_providers/{provider_id}/federation_rules/{rule_id}",
                     {"provider_id": provider_id, "rule_id": rule_id}, not_found_expected=True)
        return await self._delete(call)

    # ---------------------------------------------------------------------------------- internals

    async def _fetch(self, call: _Call, parse: Callable[[JSONObject], _T]) -> _T:
        response = await self._send(call)
        return _parse(call.operation, parse, _json_object(call.operation, response), response)

    async def _delete(self, call: _Call) -> bool:
        try:
            await self._send(call)
        except ApiNotFoundError:
            return False
        return True

    async def _paginate(self, call: _Call) -> AsyncIterator[JSONObject]:
        """Yield the items of every page of a list call, whichever of the three envelopes it uses.

        * classic cursor: ``{data, has_more, last_id}`` → next request ``after=<last_id>`` (falling
          back to the last item's ``id``, as the official Terraform provider does);
        * ``next`` cursor: ``{data, has_more, next}`` → ``after=<next>``;
        * page envelope (usage/costs): ``{data, has_more, next_page}`` → ``page=<next_page>``.

        ``has_more`` without a cursor, a repeated cursor, or more than 1000 pages is an
        :class:`~.errors.UnexpectedResponseError` rather than an endless loop.
        """
        seen: set[tuple[str, str]] = set()
        page_call = call
        for _ in range(_MAX_PAGES):
            response = await self._send(page_call)
            body = _json_object(call.operation, response)
            data = body.get("data")
            if not isinstance(data, list):
                raise unexpected_response(call.operation, "list without 'data'", response)
            for item in data:
                if isinstance(item, Mapping):
                    yield item
            cursor = _next_cursor(body, data)
            has_more = body.get("has_more")
            if has_more is None:
                has_more = cursor is not None and ("next_page" in body or "next" in body)
            if not has_more:
                return
            if cursor is None:
                raise unexpected_response(call.operation, "has_more without a cursor", response)
            if cursor in seen:
                raise unexpected_response(call.operation, "pagination cursor repeated", response)
            seen.add(cursor)
            query = [(k, v) for k, v in call.query if k != cursor[0]] + [cursor]
            page_call = _replace_query(call, query)
        raise unexpected_response(call.operation, f"more than {_MAX_PAGES} pages")

    async def _send(self, call: _Call, *, auth: str | None = None) -> httpx.Response:
        """Perform ``call`` with retries; return a 2xx response or raise a classified error."""
        url = self._base_url + call.template.format_map(
            {k: quote(v, safe="") for k, v in call.path_params.items()}
        )
        token = auth if auth is not None else _reveal(self._admin_key)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._in_flight:
                    if not call.data_plane:
                        # Drawn once the call can go out: tokens drawn earlier, while queued for a
                        # connection, would leave in a burst when connections free up.
                        await self._budget.acquire()
                    started = self._clock()
                    response = await self._http.request(
                        call.method,
                        url,
                        params=tuple(call.query) if call.query else None,
                        json=call.body,
                        headers=headers,
                        timeout=self._timeout if self._timeout is not None else httpx.USE_CLIENT_DEFAULT,
                    )
            except httpx.RequestError as exc:
                duration = self._clock() - started
                failure = Failure.NOT_SENT if isinstance(exc, _NOT_SENT) else Failure.LOST
                transport_error = classify_transport_error(exc, call.operation)
                delay = self._retry_delay(call, attempt, failure=failure)
                self._record(call, attempt, duration, status=type(exc).__name__, request_id=None, delay=delay)
                if delay is None:
                    raise transport_error from exc
                await self._sleep(delay)
                continue
            duration = self._clock() - started
            request_id = response.headers.get("x-request-id")
            if response.is_success:
                self._record(call, attempt, duration, status=str(response.status_code), request_id=request_id)
                self._note_server_date(response)
                return response
            error = classify_response(response, call.operation, data_plane=call.data_plane)
            retry_after = parse_retry_after(response.headers)
            # The organisation is over its limit, not only this request: hold every Admin API call.
            held = response.status_code == 429 and retry_after is not None and not call.data_plane
            if held and retry_after is not None:
                self._budget.hold(retry_after)
            delay = self._retry_delay(
                call,
                attempt,
                failure=Failure.STATUS,
                status=response.status_code,
                retry_after=retry_after,
                should_retry_header=response.headers.get("x-should-retry"),
            )
            self._record(
                call, attempt, duration, status=str(response.status_code), request_id=request_id, delay=delay
            )
            if delay is None:
                raise error
            if not held:  # else the next attempt's wait for the budget is the Retry-After wait
                await self._sleep(delay)

    def _retry_delay(
        self,
        call: _Call,
        attempt: int,
        *,
        failure: Failure,
        status: int | None = None,
        retry_after: float | None = None,
        should_retry_header: str | None = None,
    ) -> float | None:
        if not self._retry.should_retry(
            idempotent=call.idempotent,
            failure=failure,
            status=status,
            retry_after=retry_after,
            should_retry_header=should_retry_header,
        ):
            return None
        return self._retry.next_delay(attempt, retry_after, self._rand)

    def _record(
        self,
        call: _Call,
        attempt: int,
        duration: float,
        *,
        status: str,
        request_id: str | None,
        delay: float | None = None,
    ) -> None:
        """Write the attempt's log line and feed the metrics hook; never headers or bodies."""
        ok = status.isdigit() and 200 <= int(status) < 300
        expected_miss = call.not_found_expected and status == "404"
        if ok:
            outcome = "ok"
        elif delay is not None:
            outcome = "retry"
        else:
            outcome = "not_found" if expected_miss else "failed"
        fields: dict[str, Any] = {
            "operation": call.operation,
            "method": call.method,
            "path": call.template,
            "status": status,
            "duration_ms": round(duration * 1000, 1),
            "attempt": attempt,
            "request_id": request_id,
            "outcome": outcome,
        }
        if delay is not None:
            fields["retry_in_s"] = round(delay, 3)
        if ok or expected_miss:
            _log.info("openai.request", **fields)
        else:
            _log.warning("openai.request", **fields)
        if self._observer is not None:
            try:
                self._observer(call.operation, status, duration)
            except Exception:  # a metrics bug must not fail an API call
                _log.exception("openai.observer_failed", operation=call.operation)


def _alert_body(
    threshold_cents: int, recipients: Sequence[str], subject_prefix: str | None, currency: str, interval: str
) -> dict[str, Any]:
    if threshold_cents < 0:
        raise ValueError("threshold_cents must not be negative")
    if not recipients:
        raise ValueError("a spend alert needs at least one recipient")
    return {
        "threshold_amount": threshold_cents,
        "currency": currency,
        "interval": interval,
        "notification_channel": {"type": "email", "recipients": list(recipients), "subject_prefix": subject_prefix},
    }


def _permissions(scopes: Sequence[str] | None) -> dict[str, Any]:
    if scopes is None:
        return {"type": "service_account_default"}
    return {"type": "restricted", "scopes": list(scopes)}


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _unix(value: datetime | int) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def _replace_query(call: _Call, query: Query) -> _Call:
    return _Call(
        call.operation,
        call.method,
        call.template,
        call.path_params,
        query=query,
        body=call.body,
        idempotent=call.idempotent,
        data_plane=call.data_plane,
        not_found_expected=call.not_found_expected,
    )


def _next_cursor(body: JSONObject, data: list[Any]) -> tuple[str, str] | None:
    """Return ``(query_param, value)`` for the next page, or ``None`` if the body names none."""
    if "next_page" in body:
        page = body.get("next_page")
        return ("page", page) if isinstance(page, str) and page else None
    for name in ("next", "last_id"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return ("after", value)
    if data and isinstance(data[-1], Mapping):
        last = data[-1].get("id")
        if isinstance(last, str) and last:
            return ("after", last)
    return None


def _json_object(operation: str, response: httpx.Response) -> JSONObject:
    try:
        body = json.loads(response.content)
    except ValueError:
        raise unexpected_response(operation, "body is not JSON", response) from None
    if not isinstance(body, Mapping):
        raise unexpected_response(operation, "body is not a JSON object", response)
    return body


def _parse(
    operation: str,
    parse: Callable[[JSONObject], _T],
    data: JSONObject,
    response: httpx.Response | None = None,
) -> _T:
    """Apply a model parser, turning a shape problem into :class:`~.errors.UnexpectedResponseError`."""
    try:
        return parse(data)
    except (ValueError, TypeError) as exc:
        raise unexpected_response(operation, str(exc), response) from None
