"""The aiohttp application: one middleware in front of the admin, data-plane and control routes.

The middleware is where everything common to all routes happens, in this order:

1. an ``x-request-id`` (and ``openai-version``, ``openai-processing-ms``, ``openai-organization``)
   on every response, errors and control responses included;
2. fault injection for ``/v1`` routes (latency, dropped connection, 429 burst, 5xx);
3. authentication: ``/v1/organization/...`` needs the admin key (a minted project key gets the
   "missing scopes" refusal, a workload identity access token a 401, anything else 401
   ``invalid_api_key``); the data plane needs a live key the emulator minted or a live workload
   identity access token; ``/_emulator/...`` and the token exchange ``/oauth/token`` need nothing;
   then the organisation's Admin API rate limit, when a test set one (:mod:`.admin_limit`);
4. the error envelope: domain refusals, unknown routes (``Invalid URL (GET /v1/…)``, 404) and
   even unexpected exceptions are all answered with the spec's ``ErrorResponse`` body — never a
   traceback;
5. call counting per (kind, method, route template, status), which tests read back to show how
   many Admin API calls the operator made.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import traceback
from collections.abc import Awaitable, Callable
from email.utils import formatdate

from aiohttp import web

from . import control, routes_admin, routes_data, routes_wif
from .admin_limit import admin_rate_limited
from .context import CTX, EmulatorContext
from .errors import ApiError
from .keys import redact
from .wire import json_response

log = logging.getLogger("openai_emulator")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_-]{20,}")
_MUTATING = frozenset({"POST", "DELETE", "PUT", "PATCH"})


def redact_text(text: str) -> str:
    """Replace anything shaped like a key by its redacted form (for logs)."""
    return _KEY_LIKE.sub(lambda m: redact(m.group(0)), text)


def _kind(path: str) -> str:
    if path.startswith("/_emulator"):
        return "control"
    if path.startswith(("/v1/organization", "/v1/projects")):
        return "admin"
    if path == routes_wif.TOKEN_PATH:
        return "oauth"  # the token exchange: no Authorization header, OAuth-style errors
    return "data"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    return None


def _no_key() -> ApiError:
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
        "username) if you're accessing the API from your browser and are prompted for a username and "
        "password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
    )


def _wrong_key(token: str) -> ApiError:
    return ApiError(
        401,
        f"Incorrect API key provided: {redact(token)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _authenticate(request: web.Request, ctx: EmulatorContext, kind: str) -> None:
    state = ctx.state
    token = _bearer(request)
    if token is None:
        raise _no_key()
    if kind == "admin":
        if secrets.compare_digest(token, state.admin_key):
            return
        if state.wif.known_token(token):  # live or not: answered without any part of the token
            raise ApiError(
                401,
                "Workload identity access tokens cannot be used with the Admin API; use an admin API key.",
                code="invalid_api_key",
            )
        if state.authenticate(token) is not None:
            if request.path.startswith(("/v1/organization/costs", "/v1/organization/usage")):
                scope = "api.usage.read"
            else:
                scope = "api.management.read" if request.method == "GET" else "api.management.write"
            raise routes_data.missing_scopes(state, scope)
        raise _wrong_key(token)
    if secrets.compare_digest(token, state.admin_key):
        raise ApiError(401, "Admin API keys cannot be used for non-administration endpoints.", code="invalid_api_key")
    key = state.authenticate(token) or state.wif.authenticate(token)
    if key is None:
        if state.wif.known_token(token):
            # Nothing of an access token in the answer (not even redacted): it is a bearer secret.
            raise ApiError(
                401,
                "The workload identity access token is invalid, expired or revoked. Exchange a new subject token.",
                code="invalid_api_key",
            )
        raise _wrong_key(token)
    request[routes_data.KEY] = key


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer, as a crashed proxy would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    ctx = request.app[CTX]
    path = request.path
    method = request.method
    kind = _kind(path)
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else "unmatched"
    response: web.StreamResponse
    try:
        if kind != "control" and resource is not None:
            decision = ctx.faults.decide(method, template, path)
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.drop:
                ctx.calls[(kind, method, template, 0)] += 1
                return _drop(request)
            if decision.error is not None:
                raise decision.error
            if kind != "oauth":
                _authenticate(request, ctx, kind)
            if kind == "admin":
                wait = ctx.admin_limit.admit(time.monotonic())
                if wait is not None:
                    raise admin_rate_limited(wait)
        response = await handler(request)
    except ApiError as exc:
        response = _error_response(exc)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            response = _error_response(ApiError(404, f"Invalid URL ({method} {path})"))
        else:
            response = _error_response(ApiError(exc.status, exc.reason or "Request failed."))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.error("unhandled error on %s %s:\n%s", method, template, redact_text(traceback.format_exc()))
        response = _error_response(
            ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
            )
        )
    headers = response.headers
    headers["x-request-id"] = "req_" + secrets.token_hex(16)
    headers["openai-version"] = "2020-10-01"
    headers["openai-organization"] = ctx.state.org_id
    headers["openai-processing-ms"] = str(int((time.perf_counter() - started) * 1000))
    # The emulator's own clock (which tests move across days and months), as any server's Date would be.
    headers["Date"] = formatdate(ctx.state.clock.now(), usegmt=True)
    if kind != "control":
        ctx.calls[(kind, method, template, response.status)] += 1
    if method in _MUTATING and response.status < 400 and ctx.on_change is not None:
        ctx.on_change()
    return response


def _error_response(exc: ApiError) -> web.Response:
    return json_response(exc.body(), exc.status, exc.headers)


def build_app(ctx: EmulatorContext) -> web.Application:
    """The full application around ``ctx`` (tests may keep ``ctx`` to inspect state directly)."""
    app = web.Application(middlewares=[pipeline], client_max_size=4 * 1024 * 1024)
    app[CTX] = ctx
    app.add_routes(routes_admin.routes)
    app.add_routes(routes_data.routes)
    app.add_routes(routes_wif.routes)
    app.add_routes(control.routes)
    return app
