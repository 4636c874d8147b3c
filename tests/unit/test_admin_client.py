"""AdminClient against httpx.MockTransport: paging, retries, classification, logging. No network.

Keys are generated per test in the real shapes; nothing realistic is hard-coded. Sleeping is
replaced by a recorder, so Retry-After and backoff are asserted without waiting.
"""

from __future__ import annotations

import email.utils
import json
import secrets
import string
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from openai_operator.errors import (
    ConflictError,
    NotFoundError,
    OperatorError,
    PermanentError,
    TransientError,
)
from openai_operator.openai import (
    AdminClient,
    AdminKeyError,
    ApiConflictError,
    ApiNotFoundError,
    ApiPermanentError,
    ApiTransientError,
    KeyRejectedError,
    RetryPolicy,
    UnexpectedResponseError,
)
from openai_operator.openai.errors import parse_retry_after
from openai_operator.openai.models import ProjectApiKey
from openai_operator.openai.retry import Failure
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

BASE = "https://openai.test/v1"
_ALNUM = string.ascii_letters + string.digits


def fake_key(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(48))


Handler = Callable[[httpx.Request], httpx.Response]


def respond(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"content-type": "application/json", **(headers or {})})


def error_body(message: str, code: str | None = None, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def project(pid: str, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "object": "organization.project", "name": pid, "created_at": 1763800000, **extra}


@dataclass
class Harness:
    """A client wired to a scripted transport, recording requests, sleeps and observations."""

    admin_key: str
    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    observed: list[tuple[str, str]] = field(default_factory=list)
    script: list[Handler | httpx.Response | Exception] = field(default_factory=list)
    fallback: Handler | None = None
    now: float = 1000.0
    """Virtual time: it moves only when the client sleeps."""

    def clock(self) -> float:
        return self.now

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            if isinstance(step, httpx.Response):
                return step
            return step(request)
        if self.fallback is not None:
            return self.fallback(request)
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def observe(self, operation: str, status: str, duration: float) -> None:
        assert duration >= 0
        self.observed.append((operation, status))


@pytest.fixture
def h() -> Harness:
    return Harness(admin_key=fake_key("sk-admin-"))


@pytest.fixture
async def client(h: Harness) -> AsyncIterator[AdminClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(h.handle)) as http:
        yield AdminClient(
            http,
            admin_key=SecretValue(h.admin_key),
            base_url=BASE,
            retry=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, max_retry_after=30.0),
            observer=h.observe,
            sleep=h.sleep,
            clock=h.clock,
            rand=lambda: 1.0,
        )


def params(request: httpx.Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.url.params.multi_items():
        out.setdefault(k, []).append(v)
    return out


# --------------------------------------------------------------------------------------- paging


class TestPaging:
    async def test_classic_cursor_follows_last_id(self, h: Harness, client: AdminClient) -> None:
        """Projects page with after=<last_id> until has_more is false; include_archived is sent."""
        h.script = [
            respond(
                body={
                    "object": "list",
                    "data": [project("p1"), project("p2")],
                    "last_id": "p2",
                    "has_more": True,
                }
            ),
            respond(
                body={
                    "object": "list",
                    "data": [project("p3")],
                    "first_id": "p3",
                    "last_id": "p3",
                    "has_more": True,
                }
            ),
            respond(body={"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}),
        ]
        projects = await client.list_projects(include_archived=True)
        assert [p.id for p in projects] == ["p1", "p2", "p3"]
        assert [params(r).get("after") for r in h.requests] == [None, ["p2"], ["p3"]]
        assert all(params(r)["include_archived"] == ["true"] for r in h.requests)
        assert all(r.url.path == "/v1/organization/projects" for r in h.requests)

    async def test_classic_cursor_falls_back_to_last_item_id(self, h: Harness, client: AdminClient) -> None:
        """Without last_id the next cursor is the last item's id (as the official provider does)."""
        h.script = [
            respond(body={"object": "list", "data": [project("p1")], "has_more": True}),
            respond(body={"object": "list", "data": [project("p2")], "has_more": False}),
        ]
        assert [p.id for p in await client.list_projects()] == ["p1", "p2"]
        assert params(h.requests[1])["after"] == ["p1"]

    async def test_next_cursor_envelope(self, h: Harness, client: AdminClient) -> None:
        """The roles/groups-style envelope pages with after=<next>."""
        sa = {
            "object": "organization.project.service_account",
            "name": "n",
            "role": "member",
            "created_at": 1,
        }
        h.script = [
            respond(body={"object": "list", "data": [{**sa, "id": "sa1"}], "has_more": True, "next": "cur_A"}),
            respond(body={"object": "list", "data": [{**sa, "id": "sa2"}], "has_more": False, "next": None}),
        ]
        accounts = await client.list_service_accounts("proj_1")
        assert [a.id for a in accounts] == ["sa1", "sa2"]
        assert params(h.requests[1])["after"] == ["cur_A"]
        assert h.requests[0].url.path == "/v1/organization/projects/proj_1/service_accounts"

    async def test_costs_page_envelope_and_typed_results(self, h: Harness, client: AdminClient) -> None:
        """Costs follow next_page with page=<token>, send arrays as name[]=, and parse buckets."""

        def bucket(start: int, results: list[dict[str, Any]]) -> dict[str, Any]:
            return {"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}

        result = {
            "object": "organization.costs.result",
            "amount": {"value": 1.25, "currency": "usd"},
            "project_id": "proj_1",
            "api_key_id": "key_1",
            "line_item": None,
            "extra_field_from_the_future": True,
        }
        h.script = [
            respond(
                body={
                    "object": "page",
                    "data": [bucket(1763596800, [result])],
                    "has_more": True,
                    "next_page": "page_X",
                }
            ),
            respond(
                body={
                    "object": "page",
                    "data": [bucket(1763683200, [])],
                    "has_more": False,
                    "next_page": None,
                }
            ),
        ]
        start = datetime(2025, 11, 20, tzinfo=UTC)
        buckets = await client.costs(
            start_time=start,
            end_time=1763769600,
            group_by=["project_id", "api_key_id"],
            project_ids=["proj_1"],
            limit=31,
        )
        first = params(h.requests[0])
        assert first["start_time"] == [str(int(start.timestamp()))]
        assert first["end_time"] == ["1763769600"]
        assert first["group_by[]"] == ["project_id", "api_key_id"]
        assert first["project_ids[]"] == ["proj_1"]
        assert first["limit"] == ["31"]
        assert "page" not in first
        assert params(h.requests[1])["page"] == ["page_X"]
        assert len(buckets) == 2
        (r,) = buckets[0].results
        assert (r.project_id, r.api_key_id, r.amount_usd, r.currency) == ("proj_1", "key_1", 1.25, "usd")
        assert r.bucket_start == datetime.fromtimestamp(1763596800, tz=UTC)
        assert buckets[0].total_usd == 1.25
        assert buckets[1].results == ()

    async def test_has_more_without_cursor_is_an_error(self, h: Harness, client: AdminClient) -> None:
        """A page that claims more but names no cursor fails instead of looping."""
        h.script = [respond(body={"object": "page", "data": [], "has_more": True, "next_page": None})]
        with pytest.raises(UnexpectedResponseError, match="cursor"):
            await client.costs(start_time=0)

    async def test_repeated_cursor_is_an_error(self, h: Harness, client: AdminClient) -> None:
        """A server that returns the same cursor twice cannot trap the client in a loop."""
        page = {"object": "list", "data": [project("p1")], "last_id": "p1", "has_more": True}
        h.fallback = lambda _r: respond(body=page)
        with pytest.raises(UnexpectedResponseError, match="repeated"):
            await client.list_projects()
        assert len(h.requests) == 2

    async def test_list_without_data_is_an_error(self, h: Harness, client: AdminClient) -> None:
        """A list response without data is reported as unexpected."""
        h.script = [respond(body={"object": "list"})]
        with pytest.raises(UnexpectedResponseError):
            await client.list_rate_limits("proj_1")


# -------------------------------------------------------------------------------------- retries


class TestRetries:
    async def test_retry_after_seconds_is_honoured(self, h: Harness, client: AdminClient) -> None:
        """A 429 with Retry-After: 7 sleeps exactly 7 s, then succeeds."""
        h.script = [respond(429, error_body("slow down"), {"Retry-After": "7"}), respond(body=project("p1"))]
        assert (await client.get_project("p1")).id == "p1"
        assert h.sleeps == [7.0]

    async def test_retry_after_ms_wins(self, h: Harness, client: AdminClient) -> None:
        """retry-after-ms takes precedence over Retry-After."""
        h.script = [
            respond(429, error_body("x"), {"retry-after-ms": "1500", "Retry-After": "9"}),
            respond(body=project("p1")),
        ]
        await client.get_project("p1")
        assert h.sleeps == [1.5]

    async def test_long_retry_after_is_handed_to_the_caller(self, h: Harness, client: AdminClient) -> None:
        """A hint above max_retry_after is not slept on: TransientError(retry_after) lets Kopf wait."""
        h.script = [respond(429, error_body("x"), {"Retry-After": "120"})]
        with pytest.raises(ApiTransientError) as info:
            await client.get_project("p1")
        assert info.value.retry_after == 120.0
        assert h.sleeps == []

    async def test_attempts_are_capped_with_exponential_backoff(self, h: Harness, client: AdminClient) -> None:
        """A persistent 503 is tried max_attempts times with full-jitter delays 0.5, 1, 2 (rand=1)."""
        h.fallback = lambda _r: respond(503, error_body("down", type_="server_error"))
        with pytest.raises(ApiTransientError) as info:
            await client.list_projects()
        assert len(h.requests) == 4
        assert h.sleeps == [0.5, 1.0, 2.0]
        assert info.value.status == 503
        assert info.value.retry_after is None

    async def test_backoff_is_capped(self) -> None:
        """The exponential ceiling stops at max_delay, and jitter scales within it."""
        policy = RetryPolicy(max_attempts=20, base_delay=1.0, max_delay=5.0)
        assert [policy.backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 10)] == [1.0, 2.0, 4.0, 5.0, 5.0]
        assert policy.backoff(3, lambda: 0.25) == 1.0
        assert policy.next_delay(20, None, lambda: 1.0) is None

    async def test_transport_errors_on_reads_are_retried(self, h: Harness, client: AdminClient) -> None:
        """A read timeout on a GET is retried, then the call succeeds."""
        h.script = [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof"), respond(body=project("p1"))]
        assert (await client.get_project("p1")).id == "p1"
        assert len(h.requests) == 3

    async def test_undecodable_response_is_transient(self, h: Harness, client: AdminClient) -> None:
        """A body httpx cannot decode (broken gzip) counts as a lost response, not a crash."""
        h.fallback = lambda _r: (_ for _ in ()).throw(httpx.DecodingError("bad gzip"))
        with pytest.raises(ApiTransientError):
            await client.get_project("p1")
        assert len(h.requests) == 4

    async def test_create_is_not_retried_after_a_read_timeout(self, h: Harness, client: AdminClient) -> None:
        """The server may have created the account: no blind retry, a TransientError instead."""
        h.fallback = lambda _r: pytest.fail("create must not be retried")
        h.script = [httpx.ReadTimeout("slow")]
        with pytest.raises(ApiTransientError, match="timed out"):
            await client.create_service_account("proj_1", "k8s.ns.key.r1")
        assert len(h.requests) == 1
        assert h.sleeps == []

    @pytest.mark.parametrize(
        "failure",
        [
            pytest.param(respond(500, error_body("oops")), id="500"),
            pytest.param(respond(502, None), id="502 without body"),
            pytest.param(respond(503, error_body("busy")), id="503 without Retry-After"),
            pytest.param(respond(429, error_body("quota", code="insufficient_quota")), id="429 without Retry-After"),
            pytest.param(httpx.WriteError("reset"), id="write error"),
        ],
    )
    async def test_create_is_not_retried_on_ambiguous_failures(
        self, h: Harness, client: AdminClient, failure: httpx.Response | Exception
    ) -> None:
        """Creates fail fast on anything that may have reached the server without an explicit 'retry'."""
        h.script = [failure]
        with pytest.raises(TransientError):
            await client.create_project("team-a")
        assert len(h.requests) == 1

    async def test_create_is_retried_when_the_request_never_left(self, h: Harness, client: AdminClient) -> None:
        """A connect error proves the server saw nothing, so even a create is retried."""
        h.script = [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), respond(body=project("p1"))]
        assert (await client.create_project("team-a")).id == "p1"
        assert len(h.requests) == 3
        assert json.loads(h.requests[-1].content) == {"name": "team-a"}

    @pytest.mark.parametrize("status", [429, 503])
    async def test_create_is_retried_on_explicit_retry_after(
        self, h: Harness, client: AdminClient, status: int
    ) -> None:
        """429/503 with Retry-After mean 'not done, come back': a create may be retried."""
        h.script = [respond(status, error_body("later"), {"Retry-After": "2"}), respond(body=project("p1"))]
        assert (await client.create_project("team-a")).id == "p1"
        assert h.sleeps == [2.0]

    async def test_x_should_retry_false_is_obeyed(self, h: Harness, client: AdminClient) -> None:
        """The server can veto a retry of an otherwise retryable status."""
        h.script = [respond(500, error_body("no"), {"x-should-retry": "false"})]
        with pytest.raises(ApiTransientError):
            await client.get_project("p1")
        assert len(h.requests) == 1

    async def test_connect_errors_exhaust_into_transient(self, h: Harness, client: AdminClient) -> None:
        """Persistent connection failures end as TransientError after max_attempts."""
        h.fallback = lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r))
        with pytest.raises(ApiTransientError, match="connection failed"):
            await client.list_projects()
        assert len(h.requests) == 4
        assert [s for _, s in h.observed] == ["ConnectError"] * 4

    @pytest.mark.parametrize(
        ("idempotent", "failure", "status", "retry_after", "hint", "expected"),
        [
            (True, Failure.NOT_SENT, None, None, None, True),
            (False, Failure.NOT_SENT, None, None, None, True),
            (True, Failure.LOST, None, None, None, True),
            (False, Failure.LOST, None, None, None, False),
            (True, Failure.STATUS, 500, None, None, True),
            (True, Failure.STATUS, 408, None, None, True),
            (True, Failure.STATUS, 400, None, None, False),
            (True, Failure.STATUS, 409, None, None, False),
            (False, Failure.STATUS, 500, None, None, False),
            (False, Failure.STATUS, 503, 1.0, None, True),
            (False, Failure.STATUS, 429, 1.0, None, True),
            (False, Failure.STATUS, 429, None, None, False),
            (False, Failure.STATUS, 500, 1.0, None, False),
            (True, Failure.STATUS, 500, None, "false", False),
            (False, Failure.STATUS, 500, None, "true", True),
        ],
    )
    def test_retry_table(
        self,
        idempotent: bool,
        failure: Failure,
        status: int | None,
        retry_after: float | None,
        hint: str | None,
        expected: bool,
    ) -> None:
        """RetryPolicy.should_retry implements the documented table."""
        decision = RetryPolicy().should_retry(
            idempotent=idempotent,
            failure=failure,
            status=status,
            retry_after=retry_after,
            should_retry_header=hint,
        )
        assert decision is expected

    def test_retry_policy_validates(self) -> None:
        """Nonsense bounds are refused at construction."""
        with pytest.raises(ValueError, match="max_attempts"):
            RetryPolicy(max_attempts=0)


# ------------------------------------------------------------------------------- classification


class TestClassification:
    @pytest.mark.parametrize(
        ("status", "error_type", "domain"),
        [
            (400, ApiPermanentError, PermanentError),
            (401, AdminKeyError, PermanentError),
            (403, AdminKeyError, PermanentError),
            (404, ApiNotFoundError, NotFoundError),
            (405, ApiPermanentError, PermanentError),
            (408, ApiTransientError, TransientError),
            (409, ApiConflictError, ConflictError),
            (422, ApiPermanentError, PermanentError),
            (429, ApiTransientError, TransientError),
            (500, ApiTransientError, TransientError),
            (502, ApiTransientError, TransientError),
            (503, ApiTransientError, TransientError),
            (504, ApiTransientError, TransientError),
        ],
    )
    async def test_every_status(
        self,
        h: Harness,
        client: AdminClient,
        status: int,
        error_type: type[Exception],
        domain: type[Exception],
    ) -> None:
        """Each status maps to its Api* error, which is also the domain category handlers map."""
        h.fallback = lambda _r: respond(status, error_body(f"status {status}", code="c"), {"x-request-id": "req_1"})
        with pytest.raises(error_type) as info:
            await client.get_project("p1")
        err = info.value
        assert isinstance(err, domain)
        assert isinstance(err, OperatorError)
        assert f"HTTP {status}" in str(err)
        assert "req_1" in str(err)
        assert f"status {status}" in str(err)

    async def test_api_message_is_redacted(self, h: Harness, client: AdminClient) -> None:
        """An API message echoing a key loses it before it reaches the exception."""
        leaked = fake_key("sk-proj-")
        h.script = [respond(400, error_body(f"Incorrect API key provided: {leaked}.", code="invalid_api_key"))]
        with pytest.raises(ApiPermanentError) as info:
            await client.create_project("x")
        assert leaked not in str(info.value)
        assert info.value.details.error_code == "invalid_api_key"

    async def test_non_json_error_body(self, h: Harness, client: AdminClient) -> None:
        """A proxy's HTML error page still classifies by status."""
        h.fallback = lambda _r: httpx.Response(502, text="<html>bad gateway</html>")
        with pytest.raises(ApiTransientError, match="502"):
            await client.get_project("p1")

    async def test_non_json_success_body(self, h: Harness, client: AdminClient) -> None:
        """A 200 that is not JSON is an UnexpectedResponseError, not a crash."""
        h.script = [httpx.Response(200, text="<html>hi</html>")]
        with pytest.raises(UnexpectedResponseError, match="not JSON"):
            await client.get_project("p1")

    async def test_missing_required_field(self, h: Harness, client: AdminClient) -> None:
        """A created key without its value is reported, never silently dropped."""
        h.script = [respond(body={"id": "key_1", "object": "organization.project.service_account.api_key"})]
        with pytest.raises(UnexpectedResponseError, match="value"):
            await client.create_service_account_key("proj_1", "sa_1")

    def test_retry_after_http_date(self) -> None:
        """Retry-After may be an HTTP date; it becomes seconds from now."""
        date = email.utils.formatdate(1_000_030, usegmt=True)
        assert parse_retry_after(httpx.Headers({"Retry-After": date}), now=lambda: 1_000_000.0) == 30.0

    @pytest.mark.parametrize("value", ["soon", "-3", "nan", "inf"])
    def test_retry_after_garbage(self, value: str) -> None:
        """Unparsable or negative hints are ignored."""
        assert parse_retry_after(httpx.Headers({"Retry-After": value})) is None


# ------------------------------------------------------------------------------- the operations


class TestOperations:
    async def test_create_service_account_returns_secret_value(self, h: Harness, client: AdminClient) -> None:
        """The one-time key comes back as a SecretValue; expires_in_seconds is sent."""
        key = fake_key("sk-svcacct-")
        h.script = [
            respond(
                body={
                    "object": "organization.project.service_account",
                    "id": "svc_acct_1",
                    "name": "k8s.ns.app.r1",
                    "role": "member",
                    "created_at": 1763800000,
                    "api_key": {
                        "object": "organization.project.service_account.api_key",
                        "value": key,
                        "name": "Secret Key",
                        "created_at": 1763800000,
                        "id": "key_1",
                        "expires_at": 1766392000,
                    },
                }
            )
        ]
        created = await client.create_service_account("proj_1", "k8s.ns.app.r1", expires_in_seconds=2592000)
        req = h.requests[0]
        assert (req.method, req.url.path) == ("POST", "/v1/organization/projects/proj_1/service_accounts")
        assert json.loads(req.content) == {"name": "k8s.ns.app.r1", "expires_in_seconds": 2592000}
        assert req.headers["authorization"] == f"Bearer {h.admin_key}"
        assert created.service_account.id == "svc_acct_1"
        assert created.api_key is not None
        assert created.api_key.value == SecretValue(key)
        assert created.api_key.expires_at == datetime.fromtimestamp(1766392000, tz=UTC)
        assert key not in repr(created)
        assert created.api_key.redacted_value == key[:8] + "*" * (len(key) - 12) + key[-4:]

    async def test_create_service_account_key_body(self, h: Harness, client: AdminClient) -> None:
        """Extra keys carry scopes and expiry."""
        h.script = [respond(body={"id": "key_2", "value": fake_key("sk-svcacct-"), "created_at": 1, "name": "n"})]
        issued = await client.create_service_account_key(
            "proj_1", "svc_acct_1", name="n", scopes=["api.all.read"], expires_in_seconds=60
        )
        assert issued.id == "key_2"
        assert h.requests[0].url.path == "/v1/organization/projects/proj_1/service_accounts/svc_acct_1/api_keys"
        assert json.loads(h.requests[0].content) == {
            "name": "n",
            "scopes": ["api.all.read"],
            "expires_in_seconds": 60,
        }

    @pytest.mark.parametrize(("status", "expected"), [(200, True), (404, False)])
    async def test_delete_service_account(self, h: Harness, client: AdminClient, status: int, expected: bool) -> None:
        """Deleting returns True, or False when it was already gone (404 counts as done)."""
        body = {"deleted": True} if status == 200 else error_body("No such service account")
        h.script = [respond(status, body)]
        assert await client.delete_service_account("proj_1", "svc_acct_1") is expected
        assert h.requests[0].method == "DELETE"

    async def test_spend_limit_lifecycle(self, h: Harness, client: AdminClient) -> None:
        """get → None on 404; set sends cents; delete tolerates 404."""
        limit = {
            "object": "project.spend_limit",
            "threshold_amount": 50000,
            "currency": "USD",
            "interval": "month",
            "enforcement": {"status": "inactive"},
        }
        h.script = [respond(404, error_body("none")), respond(body=limit), respond(body=limit), respond(404)]
        assert await client.get_spend_limit("proj_1") is None
        set_ = await client.set_spend_limit("proj_1", 50000)
        assert json.loads(h.requests[1].content) == {
            "threshold_amount": 50000,
            "currency": "USD",
            "interval": "month",
        }
        assert (set_.threshold_usd, set_.enforcement_status) == (500.0, "inactive")
        got = await client.get_spend_limit("proj_1")
        assert got == set_
        assert await client.delete_spend_limit("proj_1") is False

    async def test_spend_alert_lifecycle(self, h: Harness, client: AdminClient) -> None:
        """list parses; create and update send the full body (email channel, cents); delete tolerates 404."""
        alert = {
            "id": "alert_1",
            "object": "project.spend_alert",
            "threshold_amount": 2500,
            "currency": "USD",
            "interval": "month",
            "notification_channel": {"type": "email", "recipients": ["a@example.com"], "subject_prefix": None},
        }
        h.script = [
            respond(body={"object": "list", "data": [alert], "has_more": False}),
            respond(body=alert),
            respond(body=alert | {"threshold_amount": 4000}),
            respond(404, error_body("none")),
        ]
        [listed] = await client.list_spend_alerts("proj_1")
        assert (listed.id, listed.threshold_cents, listed.recipients) == ("alert_1", 2500, ("a@example.com",))
        await client.create_spend_alert("proj_1", 2500, ["a@example.com"])
        updated = await client.update_spend_alert("proj_1", "alert_1", 4000, ["a@example.com", "b@example.com"])
        assert updated.threshold_cents == 4000
        assert await client.delete_spend_alert("proj_1", "alert_1") is False
        assert [(r.method, r.url.path) for r in h.requests] == [
            ("GET", "/v1/organization/projects/proj_1/spend_alerts"),
            ("POST", "/v1/organization/projects/proj_1/spend_alerts"),
            ("POST", "/v1/organization/projects/proj_1/spend_alerts/alert_1"),
            ("DELETE", "/v1/organization/projects/proj_1/spend_alerts/alert_1"),
        ]
        assert json.loads(h.requests[2].content) == {
            "threshold_amount": 4000,
            "currency": "USD",
            "interval": "month",
            "notification_channel": {
                "type": "email", "recipients": ["a@example.com", "b@example.com"], "subject_prefix": None,
            },
        }

    async def test_a_spend_alert_create_is_not_retried_when_its_fate_is_unknown(
        self, h: Harness, client: AdminClient
    ) -> None:
        """A lost create response might have created the alert: retrying would make an unrecorded twin."""
        h.script = [httpx.ReadTimeout("lost")]
        with pytest.raises(TransientError):
            await client.create_spend_alert("proj_1", 100, ["a@example.com"])
        assert len(h.requests) == 1

    async def test_project_modify_archive(self, h: Harness, client: AdminClient) -> None:
        """Rename posts the name; archive posts to /archive and parses the archived project."""
        h.script = [
            respond(body=project("p1", name="new")),
            respond(body=project("p1", status="archived", archived_at=1763900000)),
        ]
        assert (await client.rename_project("p1", "new")).name == "new"
        archived = await client.archive_project("p1")
        assert archived.archived
        assert [r.url.path for r in h.requests] == [
            "/v1/organization/projects/p1",
            "/v1/organization/projects/p1/archive",
        ]

    async def test_project_api_keys(self, h: Harness, client: AdminClient) -> None:
        """Keys list with owner ids; update sends only the given fields; delete tolerates 404."""
        key = {
            "object": "organization.project.api_key",
            "redacted_value": "sk-svcac****380A",
            "name": "Secret Key",
            "created_at": 1,
            "last_used_at": None,
            "id": "key_1",
            "owner_project_access": "active",
            "owner": {
                "type": "service_account",
                "service_account": {"id": "svc_acct_1", "name": "k8s.x", "role": "member", "created_at": 1},
            },
        }
        h.script = [
            respond(body={"object": "list", "data": [key], "has_more": False, "last_id": "key_1"}),
            respond(body=key),
            respond(404, error_body("gone")),
        ]
        (listed,) = await client.list_project_api_keys("proj_1")
        assert (listed.owner_type, listed.owner_id, listed.redacted_value) == (
            "service_account",
            "svc_acct_1",
            "sk-svcac****380A",
        )
        await client.update_project_api_key("proj_1", "key_1", scopes=["api.all.read"])
        assert json.loads(h.requests[1].content) == {"scopes": ["api.all.read"]}
        assert await client.delete_project_api_key("proj_1", "key_1") is False
        with pytest.raises(ValueError, match="scopes or expires"):
            await client.update_project_api_key("proj_1", "key_1")

    def test_user_owned_key_parses(self) -> None:
        """A user-owned key maps owner_id to the user."""
        parsed = ProjectApiKey.from_api(
            {"id": "key_9", "owner": {"type": "user", "user": {"id": "user-1", "name": "A", "email": "a@x"}}}
        )
        assert (parsed.owner_type, parsed.owner_id) == ("user", "user-1")

    async def test_rate_limits(self, h: Harness, client: AdminClient) -> None:
        """Rate limits list and modify with only the fields given."""
        rl = {
            "object": "project.rate_limit",
            "id": "rl-gpt",
            "model": "gpt-x",
            "max_requests_per_1_minute": 10,
            "max_tokens_per_1_minute": 1000,
        }
        h.script = [
            respond(body={"object": "list", "data": [rl], "has_more": False}),
            respond(body={**rl, "max_requests_per_1_minute": 5}),
        ]
        (listed,) = await client.list_rate_limits("proj_1")
        assert listed.max_images_per_1_minute is None
        updated = await client.modify_rate_limit("proj_1", "rl-gpt", max_requests_per_1_minute=5)
        assert updated.max_requests_per_1_minute == 5
        assert json.loads(h.requests[1].content) == {"max_requests_per_1_minute": 5}

    async def test_path_parameters_are_escaped(self, h: Harness, client: AdminClient) -> None:
        """An id cannot change the path it is placed in."""
        h.script = [respond(body=project("a/../b"))]
        await client.get_project("a/../b")
        assert h.requests[0].url.raw_path == b"/v1/organization/projects/a%2F..%2Fb"


# ---------------------------------------------------------------------------------- verify key


class TestVerifyKey:
    async def test_success_uses_the_issued_key(self, h: Harness, client: AdminClient) -> None:
        """GET /v1/models is called with the issued key, never the admin key."""
        key = fake_key("sk-svcacct-")
        h.script = [respond(body={"object": "list", "data": []})]
        await client.verify_key(SecretValue(key))
        req = h.requests[0]
        assert (req.method, req.url.path) == ("GET", "/v1/models")
        assert req.headers["authorization"] == f"Bearer {key}"
        assert h.admin_key not in str(req.headers)

    async def test_401_is_key_rejected(self, h: Harness, client: AdminClient) -> None:
        """A revoked or invalid key raises the permanent KeyRejectedError, without retries."""
        key = fake_key("sk-svcacct-")
        h.script = [respond(401, error_body(f"Incorrect API key provided: {key}", code="invalid_api_key"))]
        with pytest.raises(KeyRejectedError) as info:
            await client.verify_key(SecretValue(key))
        assert isinstance(info.value, PermanentError)
        assert key not in str(info.value)
        assert len(h.requests) == 1

    async def test_403_proves_authentication(self, h: Harness, client: AdminClient) -> None:
        """A key whose scopes exclude model listing still authenticated: verified."""
        h.script = [respond(403, error_body("Missing scopes: api.model.read"))]
        await client.verify_key(SecretValue(fake_key("sk-svcacct-")))

    async def test_persistent_429_proves_authentication(self, h: Harness, client: AdminClient) -> None:
        """A project over its hard spend limit answers 429; the key itself is fine."""
        h.fallback = lambda _r: respond(429, error_body("limit", code="insufficient_quota"))
        await client.verify_key(SecretValue(fake_key("sk-svcacct-")))
        assert len(h.requests) == 4

    async def test_5xx_stays_transient(self, h: Harness, client: AdminClient) -> None:
        """A server error during verification is transient, not a rejection."""
        h.fallback = lambda _r: respond(500, error_body("oops"))
        with pytest.raises(ApiTransientError):
            await client.verify_key(SecretValue(fake_key("sk-svcacct-")))


# --------------------------------------------------------------------------- logs and metrics


class TestLogsAndMetrics:
    async def test_one_line_per_attempt_with_request_id(self, h: Harness, client: AdminClient) -> None:
        """Each attempt logs operation, method, path template, status, attempt and request id."""
        h.script = [
            respond(429, error_body("x"), {"Retry-After": "1", "x-request-id": "req_a"}),
            respond(body=project("p1"), headers={"x-request-id": "req_b"}),
        ]
        with capture_logs() as logs:
            await client.get_project("p1")
        lines = [entry for entry in logs if entry["event"] == "openai.request"]
        assert [(e["status"], e["attempt"], e["request_id"], e["outcome"]) for e in lines] == [
            ("429", 1, "req_a", "retry"),
            ("200", 2, "req_b", "ok"),
        ]
        assert lines[0]["log_level"] == "warning"
        assert lines[0]["retry_in_s"] == 1.0
        assert all(e["operation"] == "get_project" and e["method"] == "GET" for e in lines)
        assert all(e["path"] == "/organization/projects/{project_id}" for e in lines)
        assert all(isinstance(e["duration_ms"], float) for e in lines)

    async def test_no_key_material_in_logs(self, h: Harness, client: AdminClient) -> None:
        """Neither the admin key, a created key nor an echoed key reaches any log line."""
        created = fake_key("sk-svcacct-")
        echoed = fake_key("sk-proj-")
        h.script = [
            respond(
                body={
                    "id": "svc_acct_1",
                    "name": "n",
                    "api_key": {"id": "key_1", "value": created, "name": "Secret Key", "created_at": 1},
                }
            ),
            respond(401, error_body(f"Incorrect API key provided: {echoed}")),
        ]
        with capture_logs() as logs:
            await client.create_service_account("proj_1", "n")
            with pytest.raises(AdminKeyError):
                await client.list_projects()
        dump = repr(logs)
        for secret in (h.admin_key, created, echoed):
            assert secret not in dump
        assert "Bearer" not in dump

    async def test_404_on_delete_is_logged_as_expected(self, h: Harness, client: AdminClient) -> None:
        """An already-deleted account is an info line with outcome not_found, not a warning."""
        h.script = [respond(404, error_body("gone"))]
        with capture_logs() as logs:
            await client.delete_service_account("proj_1", "svc_acct_1")
        (line,) = [e for e in logs if e["event"] == "openai.request"]
        assert (line["log_level"], line["outcome"]) == ("info", "not_found")

    async def test_observer_sees_every_attempt(self, h: Harness, client: AdminClient) -> None:
        """The metrics hook is called per attempt with the operation and status."""
        h.script = [respond(500, error_body("x")), respond(body=project("p1"))]
        await client.get_project("p1")
        assert h.observed == [("get_project", "500"), ("get_project", "200")]

    async def test_broken_observer_does_not_fail_the_call(self, h: Harness) -> None:
        """A metrics bug is logged, and the API call still succeeds."""

        def broken(_op: str, _status: str, _d: float) -> None:
            raise RuntimeError("metrics down")

        h.script = [respond(body=project("p1"))]
        async with httpx.AsyncClient(transport=httpx.MockTransport(h.handle)) as http:
            c = AdminClient(http, admin_key=SecretValue(h.admin_key), base_url=BASE, observer=broken, sleep=h.sleep)
            with capture_logs() as logs:
                assert (await c.get_project("p1")).id == "p1"
        assert any(e["event"] == "openai.observer_failed" for e in logs)

    async def test_client_repr_hides_the_admin_key(self, h: Harness, client: AdminClient) -> None:
        """Printing the client shows the base URL only."""
        assert h.admin_key not in repr(client)
        assert BASE in repr(client)
