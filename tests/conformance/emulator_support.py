"""Support for the conformance suite: checking responses against the official OpenAPI spec, and
the types of the fixtures in ``conftest.py``.

A module with its own name (not ``conftest``) so test files can import from it unambiguously.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import openai
import pydantic
from jsonschema import Draft202012Validator
from openai.types.admin.organization.projects import ProjectServiceTierSettings
from openai.types.admin.organization.workload_identity_provider import WorkloadIdentityProvider
from openai.types.admin.organization.workload_identity_provider_deleted import WorkloadIdentityProviderDeleted
from openai.types.admin.organization.workload_identity_providers.federation_rule import FederationRule
from openai.types.admin.organization.workload_identity_providers.federation_rule_deleted import (
    FederationRuleDeleted,
)
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_URI = "urn:openai-openapi"
#: Operations the newest SDK calls that the spec file does not list yet, and the schema to use.
EXTRA_OPERATIONS = {
    ("post", "/organization/projects/{project_id}/api_keys/{api_key_id}"): "ProjectApiKey",
}
_WIP = "/organization/workload_identity_providers"
_RULES = _WIP + "/{provider_id}/federation_rules"
_TIERS = "/organization/projects/{project_id}/service_tier_settings"
#: Operations the spec file lacks entirely (workload identity federation, service tiers): their
#: success bodies are checked against the SDK's own response models instead, every declared field
#: present and no other. (model, whether the body is a list envelope of that model).
SDK_OPERATIONS: dict[tuple[str, str], tuple[type[pydantic.BaseModel], bool]] = {
    ("get", _TIERS): (ProjectServiceTierSettings, False),
    ("post", _TIERS): (ProjectServiceTierSettings, False),
    ("post", _WIP): (WorkloadIdentityProvider, False),
    ("get", _WIP): (WorkloadIdentityProvider, True),
    ("get", _WIP + "/{provider_id}"): (WorkloadIdentityProvider, False),
    ("post", _WIP + "/{provider_id}"): (WorkloadIdentityProvider, False),
    ("delete", _WIP + "/{provider_id}"): (WorkloadIdentityProviderDeleted, False),
    ("post", _RULES): (FederationRule, False),
    ("get", _RULES): (FederationRule, True),
    ("get", _RULES + "/{rule_id}"): (FederationRule, False),
    ("post", _RULES + "/{rule_id}"): (FederationRule, False),
    ("delete", _RULES + "/{rule_id}"): (FederationRuleDeleted, False),
}
_SDK_PATTERNS = sorted(
    ((m, re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", t) + "$"), t) for m, t in SDK_OPERATIONS),
    key=lambda op: op[2].count("{"),
)


def sdk_operation(method: str, path: str) -> str | None:
    """The template of a spec-less operation this path is, if any."""
    return next((t for m, pattern, t in _SDK_PATTERNS if m == method.lower() and pattern.match(path)), None)


def sdk_shape_errors(model: type[pydantic.BaseModel], body: Any, *, is_list: bool) -> list[str]:
    """Problems of ``body`` as ``model`` (or a list envelope of it): validation, missing or unknown fields."""
    if is_list:
        if not isinstance(body, dict) or set(body) != {"object", "data", "first_id", "last_id", "has_more"}:
            return [f"<root>: not a list envelope: {sorted(body) if isinstance(body, dict) else body!r}"]
        return [f"data/{i}/{e}" for i, item in enumerate(body["data"]) for e in sdk_shape_errors(model, item,
                                                                                             is_list=False)]
    if not isinstance(body, dict):
        return [f"<root>: expected an object, got {type(body).__name__}"]
    problems = [f"missing field {name!r}" for name in model.model_fields if name not in body]
    problems += [f"unknown field {name!r}" for name in body if name not in model.model_fields]
    try:
        model.model_validate(body)
    except pydantic.ValidationError as exc:
        problems += [f"{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return problems


def spec_path() -> Path:
    env = os.environ.get("OPENAI_OPENAPI_SPEC")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "openai" / "openapi.yaml"


def _pointer(*parts: str) -> str:
    escaped = [p.replace("~", "~0").replace("/", "~1") for p in parts]
    return SPEC_URI + "#/" + quote("/".join(escaped), safe="/~")


@dataclass
class SpecChecker:
    """Finds the response schema for (method, path, status) in the spec and validates bodies."""

    spec: dict[str, Any]
    registry: Registry = field(init=False)
    operations: list[tuple[str, re.Pattern[str], str]] = field(init=False)

    def __post_init__(self) -> None:
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(self.spec, default_specification=DRAFT202012)
        )
        self.operations = []
        for template, ops in self.spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
            for method in ops:
                if method in ("get", "post", "delete", "put", "patch"):
                    self.operations.append((method, pattern, template))
        for method, template in EXTRA_OPERATIONS:
            pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
            self.operations.append((method, pattern, template))
        # Literal paths win over templated ones (e.g. ``/archive`` over ``/{project_id}``).
        self.operations.sort(key=lambda op: op[2].count("{"))

    def schema_ref(self, method: str, path: str, status: int) -> tuple[str, str]:
        """(operation template, JSON-schema ``$ref``) for one response."""
        method = method.lower()
        matches = [t for m, pattern, t in self.operations if m == method and pattern.match(path)]
        if not matches:
            if status >= 400:  # e.g. "Invalid URL": any error must still use the error envelope
                return "<no operation>", _pointer("components", "schemas", "ErrorResponse")
            raise LookupError(f"the spec has no operation for {method.upper()} {path}")
        template = matches[0]
        if (method, template) in EXTRA_OPERATIONS and status < 400:
            return template, _pointer("components", "schemas", EXTRA_OPERATIONS[(method, template)])
        responses = self.spec["paths"].get(template, {}).get(method, {}).get("responses", {})
        response = responses.get(str(status))
        if response is None:
            if status >= 400:
                return template, _pointer("components", "schemas", "ErrorResponse")
            raise LookupError(f"the spec declares no {status} response for {method.upper()} {template}")
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[-1]
            return template, _pointer("components", "responses", name, "content", "application/json", "schema")
        return template, _pointer(
            "paths", template, method, "responses", str(status), "content", "application/json", "schema"
        )

    def errors(self, ref: str, body: Any) -> list[str]:
        validator = Draft202012Validator({"$ref": ref}, registry=self.registry)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(body)]


@dataclass
class Seen:
    method: str
    path: str
    template: str
    status: int
    body: Any


@dataclass
class Recorder:
    """Validates every response the SDK clients receive; tests may also inspect ``seen``."""

    checker: SpecChecker
    seen: list[Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def hook(self, response: Any) -> None:
        await response.aread()
        self.check(response.request.method, response.request.url.path, response.status_code, response)

    def check(self, method: str, full_path: str, status: int, response: Any) -> None:
        where = f"{method} {full_path} -> {status}"
        if not response.headers.get("x-request-id"):
            self.problems.append(f"{where}: no x-request-id header")
        if status == 429 and not response.headers.get("retry-after") and "insufficient_quota" not in response.text:
            self.problems.append(f"{where}: 429 without Retry-After")
        path = full_path.removeprefix("/v1")
        try:
            body = json.loads(response.content)
        except ValueError:
            self.problems.append(f"{where}: body is not JSON: {response.content[:200]!r}")
            return
        sdk_template = sdk_operation(method, path)
        if sdk_template is not None and status < 400:
            model, is_list = SDK_OPERATIONS[(method.lower(), sdk_template)]
            for err in sdk_shape_errors(model, body, is_list=is_list):
                self.problems.append(f"{where}: SDK model {model.__name__}: {err}")
            self.seen.append(Seen(method, path, sdk_template, status, body))
            return
        try:
            template, ref = self.checker.schema_ref(method, path, status)
        except LookupError as exc:
            self.problems.append(f"{where}: {exc}")
            return
        for err in self.checker.errors(ref, body):
            self.problems.append(f"{where}: schema {ref.rsplit('/', 1)[-1]}: {err}")
        self.seen.append(Seen(method, path, template, status, body))

    def operations(self) -> set[tuple[str, str, int]]:
        return {(s.method, s.template, s.status) for s in self.seen}


#: ``sdk()`` → an admin client; ``sdk(api_key=value)`` → a data-plane client with that key.
ClientFactory = Callable[..., openai.AsyncOpenAI]
#: ``await mint()`` → (project id, service account id, key value).
Minter = Callable[..., Awaitable[tuple[str, str, str]]]
