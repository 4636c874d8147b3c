"""The OpenAI error envelope as a Python exception.

The domain model (``state.py``) raises :class:`ApiError` for every refusal, carrying the HTTP status
the real API would answer with. Keeping status and body together in one object means the HTTP layer
has exactly one place that turns refusals into responses, so no route can answer a bad request with a
500 or a traceback.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal the emulator answers with the spec's ``ErrorResponse`` envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # the wire field is called "type"
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body: all four fields are required by the spec's ``Error`` schema."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def not_found(kind: str, ident: str, *, param: str | None = None) -> ApiError:
    return ApiError(404, f"No {kind} found with id '{ident}'.", param=param, code="not_found")


def invalid_type(param: str, expected: str, value: object) -> ApiError:
    got = type_name(value)
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def invalid_value(param: str, value: object, choices: tuple[str, ...]) -> ApiError:
    """A value outside an enum, listing the accepted ones."""
    listed = ", ".join(f"'{c}'" for c in choices)
    return ApiError(
        400,
        f"Invalid value for '{param}': '{value}'. Supported values are: {listed}.",
        param=param,
        code="invalid_value",
    )


def type_name(value: object) -> str:
    """Name a JSON value the way OpenAI's validation messages do ("an integer", "a string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unknown value"
