"""Request parsing shared by all routes: JSON bodies, typed body fields and query parameters.

Every malformed input becomes a 400 with the spec's error envelope and a ``param`` naming the
offending field, in the style of OpenAI's own validation messages. Query arrays are accepted in all
three encodings clients use: ``x=v``, repeated ``x=v&x=w`` and the SDK's ``x[]=v``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from .errors import ApiError, bad_request, invalid_type, invalid_value, type_name

Kind = Literal["str", "int", "bool", "str_list", "object", "any"]
_EXPECTED = {
    "str": "a string",
    "int": "an integer",
    "bool": "a boolean",
    "str_list": "an array of strings",
    "object": "an object",
    "any": "a value",
}


@dataclass(frozen=True)
class Field:
    kind: Kind
    required: bool = False
    nullable: bool = False
    enum: tuple[str, ...] | None = None


def _check_type(name: str, field: Field, value: Any) -> None:
    if value is None:
        if not field.nullable:
            raise invalid_type(name, _EXPECTED[field.kind], value)
        return
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str_list": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "object": isinstance(value, dict),
        "any": True,
    }[field.kind]
    if not ok:
        raise invalid_type(name, _EXPECTED[field.kind], value)
    if field.enum is not None and value not in field.enum:
        raise invalid_value(name, value, field.enum)


def _reject_constant(name: str) -> Any:
    """``NaN``/``Infinity`` are not JSON; Python's parser accepts them unless told otherwise."""
    raise ValueError(f"{name} is not valid JSON")


async def json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON.)",
        ) from exc


async def read_body(request: web.Request, fields: Mapping[str, Field], *, strict: bool = True) -> dict[str, Any]:
    """Parse and check a JSON object body against ``fields``; unknown fields are refused when strict."""
    body = await json_body(request)
    return check_object(body, fields, strict=strict)


def check_object(body: Any, fields: Mapping[str, Field], *, strict: bool = True, prefix: str = "") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"Invalid body: expected a JSON object, but got {type_name(body)}.")
    if strict:
        for name in body:
            if name not in fields:
                raise ApiError(
                    400, f"Unrecognized request argument supplied: {prefix}{name}", param=prefix + name,
                    code="unknown_parameter",
                )  # fmt: skip
    for name, field in fields.items():
        if name not in body:
            if field.required:
                raise ApiError(
                    400, f"Missing required parameter: '{prefix}{name}'.", param=prefix + name,
                    code="missing_required_parameter",
                )  # fmt: skip
            continue
        _check_type(prefix + name, field, body[name])
    return body


def q_str(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return value if value else None


def q_int(
    request: web.Request, name: str, default: int | None, lo: int | None = None, hi: int | None = None
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, f"Invalid '{name}': expected an integer, but got '{raw}'.", param=name, code="invalid_type"
        ) from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(
            400,
            f"Invalid '{name}': must be between {lo} and {hi}, but got {value}.",
            param=name,
            code="invalid_value",
        )
    return value


def q_limit(request: web.Request, default: int, hi: int, lo: int = 1) -> int:
    value = q_int(request, "limit", default, lo, hi)
    assert value is not None
    return value


def q_enum(request: web.Request, name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    value = q_str(request, name)
    if value is None:
        return default
    if value not in choices:
        raise invalid_value(name, value, choices)
    return value


def q_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ApiError(400, f"Invalid '{name}': expected a boolean, but got '{raw}'.", param=name, code="invalid_type")


def q_list(request: web.Request, name: str, enum: tuple[str, ...] | None = None) -> list[str]:
    """All values of an array parameter, whichever of the three encodings the client used."""
    values = [*request.query.getall(name, []), *request.query.getall(name + "[]", [])]
    if enum is not None:
        for v in values:
            if v not in enum:
                raise invalid_value(name, v, enum)
    return values


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )
