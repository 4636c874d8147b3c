"""Data-plane routes: ``GET /v1/models`` and non-streaming ``POST /v1/chat/completions``.

They authenticate with keys the emulator minted (the middleware puts the live key on the
request), enforce key scopes, project model permissions, the project's hard spend limit and its
per-model rate limits, then answer deterministically and charge tokens and cost to the key and its
project. That recorded spend is what ``/organization/costs`` and ``/organization/usage/completions``
report, so a budget test exercises the same path as production.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from aiohttp import web

from .context import CTX
from .errors import ApiError, bad_request
from .pricing import MODELS, estimate_tokens
from .state import READ_SCOPES, WRITE_SCOPES, ApiKey, EmulatorState, Project
from .wire import Field, json_response, read_body

routes = web.RouteTableDef()
KEY = web.RequestKey("api_key", ApiKey)


def missing_scopes(state: EmulatorState, scope: str) -> ApiError:
    """The "insufficient permissions" refusal (401 by default, 403 if configured)."""
    return ApiError(
        state.options.scope_error_status,
        f"You have insufficient permissions for this operation. Missing scopes: {scope}. Check that you "
        "have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), "
        "and if you're using a restricted API key, that it has the necessary scopes.",
    )


def _allows(key: ApiKey, accepted: frozenset[str]) -> bool:
    return not key.scopes or any(s in accepted for s in key.scopes)


def _visible(p: Project, model: str) -> bool:
    mp = p.model_permissions
    if mp is None:
        return True
    return (model in mp.model_ids) == (mp.mode == "allow_list")


def _model_json(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODELS[model_id].created, "owned_by": "system"}


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    state = request.app[CTX].state
    key = request[KEY]
    if not _allows(key, READ_SCOPES):
        raise missing_scopes(state, "api.model.read")
    p = state.projects[key.project_id]
    return json_response({"object": "list", "data": [_model_json(m) for m in MODELS if _visible(p, m)]})


@routes.get("/v1/models/{model}")
async def retrieve_model(request: web.Request) -> web.Response:
    state = request.app[CTX].state
    key = request[KEY]
    if not _allows(key, READ_SCOPES):
        raise missing_scopes(state, "api.model.read")
    model = request.match_info["model"]
    if model not in MODELS or not _visible(state.projects[key.project_id], model):
        raise _no_model(model)
    return json_response(_model_json(model))


def _no_model(model: str) -> ApiError:
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def model_denied(p: Project, model: str) -> ApiError:
    """A model the project's model permissions exclude: 403 with the body the real API answers.

    Status, message, ``type`` and ``code`` as widely reported from the live API (e.g.
    ``{"message": "Project `proj_…` does not have access to model `gpt-4o-mini`", "type":
    "invalid_request_error", "param": null, "code": "model_not_found"}``); neither the spec nor
    the SDK documents this refusal, so this is the emulator's assumption. The SDK raises
    ``PermissionDeniedError``.
    """
    return ApiError(403, f"Project `{p.id}` does not have access to model `{model}`", code="model_not_found")


CHAT_FIELDS = {
    "model": Field("str", required=True),
    "messages": Field("any", required=True),
    "stream": Field("bool", nullable=True),
    "max_tokens": Field("int", nullable=True),
    "max_completion_tokens": Field("int", nullable=True),
}


def _prompt_text(messages: Any) -> list[str]:
    """The text of each message; validates the shape the SDK sends."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("Invalid 'messages': expected a non-empty array of messages.", param="messages")
    texts: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise bad_request(f"Invalid 'messages[{i}]': expected an object with a 'role'.", param=f"messages[{i}]")
        content = msg.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.append(" ".join(str(part.get("text", "")) for part in content if isinstance(part, dict)))
        elif content is None:
            texts.append("")
        else:
            raise bad_request(f"Invalid 'messages[{i}].content'.", param=f"messages[{i}].content")
    return texts


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    state = ctx.state
    key = request[KEY]
    if not _allows(key, WRITE_SCOPES):
        raise missing_scopes(state, "model.request")
    body = await read_body(request, CHAT_FIELDS, strict=False)
    model: str = body["model"]
    texts = _prompt_text(body["messages"])
    if body.get("stream"):
        raise bad_request("The emulator does not support streaming; send 'stream': false.", param="stream")
    p = state.projects[key.project_id]
    if model not in MODELS:
        raise _no_model(model)
    if not _visible(p, model):
        raise model_denied(p, model)
    if state.spend_limit_reached(p):
        raise ApiError(
            429,
            "You exceeded your current quota: the project's hard spend limit has been reached for this month.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    last = texts[-1]
    reply = f"Emulated reply from {model}: {last[:80]}" if last else f"Emulated reply from {model}."
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    finish = "stop"
    if cap is not None and cap < estimate_tokens(reply):
        reply, finish = reply[: max(1, cap) * 4], "length"
    prompt_tokens = sum(estimate_tokens(t) + 3 for t in texts) + 3
    completion_tokens = estimate_tokens(reply)
    used_tokens = prompt_tokens + completion_tokens
    decision = state.check_rate_limit(p, model, used_tokens)
    rl = decision.limit
    if decision.refused is not None:
        what, limit, used, retry = decision.refused
        raise ApiError(
            429,
            f"Rate limit reached for {model} in project {p.id} on {what}: Limit {limit}, Used {used}, "
            f"Requested {1 if 'requests' in what else used_tokens}. "
            f"Please try again in {retry}s.",
            type="tokens" if "tokens" in what else "requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(retry)},
        )
    state.record_completion(key, model, prompt_tokens, completion_tokens)
    digest = hashlib.sha256(f"{key.id}:{state.now()}:{len(state.usage)}".encode()).hexdigest()[:29]
    headers = {
        "x-ratelimit-limit-requests": str(rl.max_requests_per_1_minute),
        "x-ratelimit-limit-tokens": str(rl.max_tokens_per_1_minute),
        "x-ratelimit-remaining-requests": str(decision.remaining_requests),
        "x-ratelimit-remaining-tokens": str(decision.remaining_tokens),
        "x-ratelimit-reset-requests": f"{math.ceil(60_000 / max(1, rl.max_requests_per_1_minute))}ms",
        "x-ratelimit-reset-tokens": f"{math.ceil(60_000 * used_tokens / max(1, rl.max_tokens_per_1_minute))}ms",
    }
    return json_response(
        {
            "id": "chatcmpl-" + digest,
            "object": "chat.completion",
            "created": state.now(),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
        },
        headers=headers,
    )
