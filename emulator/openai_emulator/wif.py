"""Workload identity federation: providers, federation rules, the token exchange and its access tokens.

Nothing here knows about HTTP (``routes_wif.py`` parses and renders). The shapes follow the official
SDK 3.57 (``openai.types.admin.organization.workload_identity_provider*``); the OpenAPI spec has no
such endpoints. Where the public sources do not settle a behaviour the emulator makes one documented
choice, listed in ``docs/emulator-workload-identity.md`` and repeated here:

- **Providers per issuer**: several providers MAY share one issuer (an operator can spread mappings
  over further providers when one holds its 50 rules).
- **Limits**: 50 providers per organisation and 50 rules per provider; the 51st create answers 400
  with ``code`` ``workload_identity_provider_limit_exceeded`` / ``federation_rule_limit_exceeded``.
- **Duplicates**: a second enabled rule for the same (provider, service account) with the same
  matchers is accepted; an exchange that then matches both fails (exactly one must match).
- **Deleting a provider** that still has rules answers 400 ``workload_identity_provider_has_rules``.
- **Create defaults**: ``enabled`` true; ``verification`` ``{type: discovery, discovery_url: null}``.
  Only ``uploaded_jwks`` verification can exchange (the emulator fetches nothing).
- **Updates** replace ``attribute_matchers`` (and ``verification``) wholesale, never merge.
- **Transformations** are CEL (``common-expression-language``) over one variable, ``assertion``
  (the verified claims); each ``attribute`` must start with ``openai.`` and be unique, and each
  expression must compile and use no other variable (checked on create/update). At exchange time a
  result that is not a string, bool, int or finite number, or an evaluation error, fails the
  exchange (``invalid_grant``). Matchers on ``openai.*`` keys compare against these results.
- **Access tokens** are opaque (not ``sk-``), act as the mapped service account in its project with
  the rule's scopes, are charged under ``api_key_id`` = the service account's id, and stop working
  (401) when they expire or when their rule or provider is deleted or disabled, or their service
  account is deleted or its project archived.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import cel
import jwt

from .errors import ApiError, bad_request, not_found
from .keys import new_id

if TYPE_CHECKING:
    from .state import ApiKey, EmulatorState

MAX_PROVIDERS = 50
MAX_RULES_PER_PROVIDER = 50
MAX_TRANSFORMATIONS = 20
MAX_ACCESS_TOKEN_SECONDS = 3600
#: Leeway for ``iat``/``nbf`` in the future (clock skew between the cluster and the exchange).
CLOCK_SKEW_SECONDS = 60
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN, not a secret
#: Signature algorithms accepted in a subject token's header (``none`` and HMAC never).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat")
#: JWK members that only a private key has; an uploaded JWKS must not contain them.
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
ACCESS_TOKEN_PREFIX = "oaiwit_"  # noqa: S105 - the public prefix of issued tokens


class OAuthFailure(Exception):
    """A refused exchange: answered ``{error, error_description}`` (RFC 6749 §5.2), never the API envelope."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _bad_subject(description: str) -> OAuthFailure:
    return OAuthFailure(401, "invalid_subject_token", description)


def _bad_grant(description: str) -> OAuthFailure:
    return OAuthFailure(400, "invalid_grant", description)


@dataclass
class Provider:
    id: str
    name: str
    issuer: str
    audience: str
    created_at: int
    updated_at: int
    description: str | None = None
    enabled: bool = True
    type: str = "oidc"
    verification: dict[str, Any] = field(default_factory=lambda: {"type": "discovery", "discovery_url": None})
    attribute_transformations: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Permissions:
    type: str = "service_account_default"
    scopes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if self.type == "restricted":
            return {"type": "restricted", "scopes": list(self.scopes)}
        return {"type": "service_account_default"}


@dataclass
class FederationRule:
    id: str
    provider_id: str
    project_id: str
    service_account_id: str
    attribute_matchers: dict[str, str | bool | int | float]
    created_at: int
    updated_at: int
    name: str | None = None
    description: str | None = None
    enabled: bool = True
    permissions: Permissions = field(default_factory=Permissions)


@dataclass
class AccessToken:
    """An issued access token. ``value`` is the bearer secret: never logged, rendered or dumped."""

    value: str
    provider_id: str
    rule_id: str
    project_id: str
    service_account_id: str
    scopes: list[str]
    issued_at: int
    expires_at: int


# ---------------------------------------------------------------------------------------- validation


def check_matchers(matchers: Any, param: str = "attribute_matchers") -> dict[str, str | bool | int | float]:
    """At least one matcher; keys non-empty; values scalars; a ``*`` only last, after a non-empty prefix."""
    if not isinstance(matchers, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param=param, code="invalid_type")
    if not matchers:
        raise bad_request(
            f"Invalid '{param}': at least one matcher is required (a rule without matchers would match every token).",
            param=param,
            code="invalid_value",
        )
    out: dict[str, str | bool | int | float] = {}
    for key, value in matchers.items():
        where = f"{param}.{key}"
        if not key:
            raise bad_request(f"Invalid '{param}': matcher keys must be non-empty.", param=param, code="invalid_value")
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_request(f"Invalid '{where}': numbers must be finite.", param=where, code="invalid_value")
        if not isinstance(value, str | bool | int | float):
            raise bad_request(
                f"Invalid type for '{where}': expected a string, boolean or number.", param=where, code="invalid_type"
            )
        if isinstance(value, str):
            if not value:
                raise bad_request(f"Invalid '{where}': must be a non-empty string.", param=where, code="invalid_value")
            star = value.find("*")
            if star != -1 and (star != len(value) - 1 or star == 0):
                raise bad_request(
                    f"Invalid '{where}': a wildcard '*' is only allowed once, at the end, after a non-empty prefix.",
                    param=where,
                    code="invalid_value",
                )
        out[key] = value
    return out


def check_permissions(raw: Any, param: str = "permissions") -> Permissions:
    if not isinstance(raw, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param=param, code="invalid_type")
    kind = raw.get("type")
    if kind == "service_account_default":
        extra = set(raw) - {"type"}
        if extra:
            raise bad_request(
                f"Unrecognized request argument supplied: {param}.{sorted(extra)[0]}",
                param=f"{param}.{sorted(extra)[0]}",
                code="unknown_parameter",
            )
        return Permissions()
    if kind == "restricted":
        scopes = raw.get("scopes")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise bad_request(
                f"Invalid '{param}.scopes': restricted permissions need a non-empty array of non-empty strings.",
                param=f"{param}.scopes",
                code="invalid_value",
            )
        extra = set(raw) - {"type", "scopes"}
        if extra:
            raise bad_request(
                f"Unrecognized request argument supplied: {param}.{sorted(extra)[0]}",
                param=f"{param}.{sorted(extra)[0]}",
                code="unknown_parameter",
            )
        return Permissions("restricted", list(scopes))
    raise bad_request(
        f"Invalid value for '{param}.type': '{kind}'. Supported values are: 'service_account_default', 'restricted'.",
        param=f"{param}.type",
        code="invalid_value",
    )


def check_jwks(jwks: Any, param: str = "verification.jwks") -> dict[str, Any]:
    """A public JWKS: ``{"keys": [...]}``, each key usable by PyJWT, with a unique non-empty ``kid``."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise bad_request(
            f"Invalid '{param}': expected an object with a 'keys' array.", param=param, code="invalid_value"
        )
    kids: set[str] = set()
    for i, key in enumerate(jwks["keys"]):
        where = f"{param}.keys[{i}]"
        if not isinstance(key, dict):
            raise bad_request(f"Invalid '{where}': expected a JSON Web Key object.", param=where, code="invalid_value")
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid:
            raise bad_request(f"Invalid '{where}.kid': every key needs a non-empty 'kid'.", param=f"{where}.kid",
                              code="invalid_value")  # fmt: skip
        if kid in kids:
            raise bad_request(f"Invalid '{where}.kid': duplicate kid '{kid}'.", param=f"{where}.kid",
                              code="invalid_value")  # fmt: skip
        kids.add(kid)
        private = [m for m in PRIVATE_JWK_MEMBERS if m in key]
        if private:
            raise bad_request(
                f"Invalid '{where}': the JWKS must hold public keys only (found private member '{private[0]}').",
                param=where,
                code="invalid_value",
            )
        try:
            jwt.PyJWK.from_dict(key)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise bad_request(
                f"Invalid '{where}': not a usable public key ({exc.__class__.__name__}).", param=where,
                code="invalid_value",
            ) from None  # fmt: skip
    return jwks


def check_verification(raw: Any) -> dict[str, Any]:
    param = "verification"
    if not isinstance(raw, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param=param, code="invalid_type")
    kind = raw.get("type")
    if kind == "uploaded_jwks":
        if set(raw) - {"type", "jwks"}:
            extra = sorted(set(raw) - {"type", "jwks"})[0]
            raise bad_request(f"Unrecognized request argument supplied: {param}.{extra}", param=f"{param}.{extra}",
                              code="unknown_parameter")  # fmt: skip
        if "jwks" not in raw:
            raise bad_request("Missing required parameter: 'verification.jwks'.", param="verification.jwks",
                              code="missing_required_parameter")  # fmt: skip
        return {"type": "uploaded_jwks", "jwks": check_jwks(raw["jwks"])}
    if kind == "discovery":
        url = raw.get("discovery_url")
        if url is not None and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
            raise bad_request("Invalid 'verification.discovery_url': expected an absolute URL or null.",
                              param="verification.discovery_url", code="invalid_value")  # fmt: skip
        return {"type": "discovery", "discovery_url": url}
    raise bad_request(
        f"Invalid value for '{param}.type': '{kind}'. Supported values are: 'discovery', 'uploaded_jwks'.",
        param=f"{param}.type",
        code="invalid_value",
    )


def check_transformations(raw: Any) -> list[dict[str, str]]:
    """At most 20 of ``{attribute: "openai.<name>" (unique), expression: CEL over assertion}``."""
    param = "attribute_transformations"
    if not isinstance(raw, list):
        raise bad_request(f"Invalid type for '{param}': expected an array.", param=param, code="invalid_type")
    if len(raw) > MAX_TRANSFORMATIONS:
        raise bad_request(f"Invalid '{param}': at most {MAX_TRANSFORMATIONS} transformations are allowed.",
                          param=param, code="invalid_value")  # fmt: skip
    for i, item in enumerate(raw):
        where = f"{param}[{i}]"
        if not isinstance(item, dict) or set(item) != {"attribute", "expression"}:
            raise bad_request(f"Invalid '{where}': expected an object with 'attribute' and 'expression'.",
                              param=where, code="invalid_value")  # fmt: skip
        attribute, expression = item["attribute"], item["expression"]
        if not isinstance(attribute, str) or not 1 <= len(attribute) <= 256:
            raise bad_request(f"Invalid '{where}.attribute': 1 to 256 characters.", param=f"{where}.attribute",
                              code="invalid_value")  # fmt: skip
        if not isinstance(expression, str) or not 1 <= len(expression) <= 4096:
            raise bad_request(f"Invalid '{where}.expression': 1 to 4096 characters.", param=f"{where}.expression",
                              code="invalid_value")  # fmt: skip
        if not attribute.startswith("openai.") or len(attribute) == len("openai."):
            raise bad_request(f"Invalid '{where}.attribute': must be 'openai.<name>'.", param=f"{where}.attribute",
                              code="invalid_value")  # fmt: skip
        if any(other["attribute"] == attribute for other in raw[:i]):
            raise bad_request(f"Invalid '{where}.attribute': duplicate attribute '{attribute}'.",
                              param=f"{where}.attribute", code="invalid_value")  # fmt: skip
        try:
            program = cel.compile(expression)
        except (ValueError, RuntimeError) as exc:
            raise bad_request(f"Invalid '{where}.expression': not a valid CEL expression: {exc}",
                              param=f"{where}.expression", code="invalid_value") from None  # fmt: skip
        unknown = sorted(set(program.variables()) - {"assertion"})
        if unknown:
            raise bad_request(
                f"Invalid '{where}.expression': unknown variable '{unknown[0]}' (only 'assertion' is defined).",
                param=f"{where}.expression", code="invalid_value",
            )  # fmt: skip
    return [{"attribute": t["attribute"], "expression": t["expression"]} for t in raw]


def evaluate_transformations(transformations: list[dict[str, str]], claims: Mapping[str, Any]) -> dict[str, Any]:
    """The ``openai.*`` attributes of verified ``claims``; a failed or non-scalar result fails the exchange."""
    out: dict[str, Any] = {}
    for t in transformations:
        try:
            value = cel.evaluate(t["expression"], {"assertion": dict(claims)})
        except Exception as exc:  # the CEL runtime raises KeyError, TypeError, ZeroDivisionError, ...
            raise _bad_grant(f"Attribute transformation '{t['attribute']}' failed: {exc.__class__.__name__}.") from None
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if not isinstance(value, str | bool | int | float):
            raise _bad_grant(
                f"Attribute transformation '{t['attribute']}' gave {type(value).__name__}, not a string, boolean or "
                "number."
            )
        out[t["attribute"]] = value
    return out


def check_issuer(issuer: Any) -> str:
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")) or len(issuer) < 9:
        raise bad_request("Invalid 'issuer': expected an absolute URL such as 'https://issuer.example.com'.",
                          param="issuer", code="invalid_value")  # fmt: skip
    return issuer


def _non_empty(name: str, value: str) -> str:
    if not value:
        raise bad_request(f"Invalid '{name}': must be a non-empty string.", param=name, code="invalid_value")
    return value


# ---------------------------------------------------------------------------------------- matching


def _as_string(value: Any) -> str | None:
    """Matcher and claim values compare as strings; booleans as ``true``/``false``; None for non-scalars."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _matches_one(expected: str | bool | int | float, actual: Any) -> bool:
    want = _as_string(expected)
    assert want is not None
    candidates = actual if isinstance(actual, list) else [actual]  # an array claim (aud) matches by element
    for candidate in candidates:
        got = _as_string(candidate)
        if got is None:
            continue
        if isinstance(expected, str) and want.endswith("*"):
            if got.startswith(want[:-1]):
                return True
        elif got == want:
            return True
    return False


def rule_matches(
    rule: FederationRule, claims: Mapping[str, Any], attributes: Mapping[str, Any] | None = None
) -> bool:
    """All matchers must hold. Keys are raw top-level claims, or ``openai.*`` attributes, which only
    transformations define (a claim named ``openai.x`` does not count)."""
    for key, expected in rule.attribute_matchers.items():
        source = (attributes or {}) if key.startswith("openai.") else claims
        if key not in source or not _matches_one(expected, source[key]):
            return False
    return True


def _audience_ok(aud: Any, audience: str) -> bool:
    if isinstance(aud, str):
        return aud == audience
    if isinstance(aud, list):
        return audience in aud
    return False


# ---------------------------------------------------------------------------------------- the registry


class WorkloadIdentityFederation:
    """Providers, rules and issued access tokens of one organisation (part of :class:`EmulatorState`)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.providers: dict[str, Provider] = {}
        self.rules: dict[str, FederationRule] = {}
        self.tokens: dict[str, AccessToken] = {}

    # -- providers

    def create_provider(self, body: Mapping[str, Any]) -> Provider:
        if len(self.providers) >= MAX_PROVIDERS:
            raise ApiError(
                400,
                f"Organization '{self.state.org_id}' already has the maximum of {MAX_PROVIDERS} workload identity "
                "providers. Delete a provider before creating another.",
                code="workload_identity_provider_limit_exceeded",
            )
        now = self.state.now()
        provider = Provider(
            id=new_id("wip_"),
            name=_non_empty("name", body["name"]),
            issuer=check_issuer(body["issuer"]),
            audience=_non_empty("audience", body["audience"]),
            created_at=now,
            updated_at=now,
            description=body.get("description"),
            enabled=body.get("enabled", True),
        )
        if "verification" in body:
            provider.verification = check_verification(body["verification"])
        if "attribute_transformations" in body:
            provider.attribute_transformations = check_transformations(body["attribute_transformations"])
        self.state._register(provider.id)
        self.providers[provider.id] = provider
        self.state._record(
            "workload_identity_provider.created", None, provider.id, {"id": provider.id, "issuer": provider.issuer}
        )
        return provider

    def get_provider(self, provider_id: str) -> Provider:
        provider = self.providers.get(provider_id)
        if provider is None:
            raise not_found("workload identity provider", provider_id, param="workload_identity_provider_id")
        return provider

    def update_provider(self, provider_id: str, body: Mapping[str, Any]) -> Provider:
        provider = self.get_provider(provider_id)
        # Validate everything before changing anything, so a refused update changes nothing.
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = _non_empty("name", body["name"])
        if "issuer" in body:
            changes["issuer"] = check_issuer(body["issuer"])
        if "audience" in body:
            changes["audience"] = _non_empty("audience", body["audience"])
        if "description" in body:
            changes["description"] = body["description"]
        if "enabled" in body:
            changes["enabled"] = body["enabled"]
        if "verification" in body:
            changes["verification"] = check_verification(body["verification"])
        if "attribute_transformations" in body:
            changes["attribute_transformations"] = check_transformations(body["attribute_transformations"])
        for name, value in changes.items():
            setattr(provider, name, value)
        provider.updated_at = self.state.now()
        self.state._record(
            "workload_identity_provider.updated", None, provider.id,
            {"id": provider.id, "changes_requested": sorted(changes)},
        )  # fmt: skip
        return provider

    def list_providers(self) -> list[Provider]:
        return list(self.providers.values())

    def delete_provider(self, provider_id: str) -> Provider:
        provider = self.get_provider(provider_id)
        count = sum(1 for r in self.rules.values() if r.provider_id == provider.id)
        if count:
            raise ApiError(
                400,
                f"Workload identity provider '{provider.id}' still has {count} federation rule(s). "
                "Delete its federation rules before deleting the provider.",
                param="workload_identity_provider_id",
                code="workload_identity_provider_has_rules",
            )
        del self.providers[provider.id]
        self.state._record("workload_identity_provider.deleted", None, provider.id, {"id": provider.id})
        return provider

    # -- rules

    def create_rule(self, provider_id: str, body: Mapping[str, Any]) -> FederationRule:
        provider = self.get_provider(provider_id)
        matchers = check_matchers(body["attribute_matchers"])
        permissions = check_permissions(body["permissions"]) if "permissions" in body else Permissions()
        project = self.state.active_project(body["project_id"])
        self.state.get_service_account(project.id, body["service_account_id"])
        if sum(1 for r in self.rules.values() if r.provider_id == provider.id) >= MAX_RULES_PER_PROVIDER:
            raise ApiError(
                400,
                f"Workload identity provider '{provider.id}' already has the maximum of {MAX_RULES_PER_PROVIDER} "
                "federation rules. Delete a rule, or create the rule on another provider for the same issuer.",
                param="workload_identity_provider_id",
                code="federation_rule_limit_exceeded",
            )
        now = self.state.now()
        rule = FederationRule(
            id=new_id("wifr_"),
            provider_id=provider.id,
            project_id=project.id,
            service_account_id=body["service_account_id"],
            attribute_matchers=matchers,
            created_at=now,
            updated_at=now,
            name=body.get("name"),
            description=body.get("description"),
            enabled=body.get("enabled", True),
            permissions=permissions,
        )
        self.state._register(rule.id)
        self.rules[rule.id] = rule
        self.state._record(
            "workload_identity_provider_mapping.created", project, rule.id,
            {"id": rule.id, "identity_provider_id": provider.id, "service_account_id": rule.service_account_id},
        )  # fmt: skip
        return rule

    def get_rule(self, provider_id: str, rule_id: str) -> FederationRule:
        self.get_provider(provider_id)
        rule = self.rules.get(rule_id)
        if rule is None or rule.provider_id != provider_id:
            raise not_found("federation rule", rule_id, param="workload_identity_federation_rule_id")
        return rule

    def update_rule(self, provider_id: str, rule_id: str, body: Mapping[str, Any]) -> FederationRule:
        rule = self.get_rule(provider_id, rule_id)
        for name in ("project_id", "service_account_id"):
            if name in body and body[name] != getattr(rule, name):
                raise bad_request(
                    f"'{name}' of a federation rule cannot be changed. Delete the rule and create a new one.",
                    param=name,
                    code="immutable_parameter",
                )
        changes: dict[str, Any] = {}
        if "attribute_matchers" in body:
            changes["attribute_matchers"] = check_matchers(body["attribute_matchers"])
        if "permissions" in body:
            changes["permissions"] = check_permissions(body["permissions"])
        for name in ("enabled", "name", "description"):
            if name in body:
                changes[name] = body[name]
        for name, value in changes.items():
            setattr(rule, name, value)
        rule.updated_at = self.state.now()
        self.state._record(
            "workload_identity_provider_mapping.updated", self.state.projects.get(rule.project_id), rule.id,
            {"id": rule.id, "changes_requested": sorted(changes)},
        )  # fmt: skip
        return rule

    def list_rules(self, provider_id: str, service_account_id: str | None) -> list[FederationRule]:
        self.get_provider(provider_id)
        return [
            r
            for r in self.rules.values()
            if r.provider_id == provider_id
            and (service_account_id is None or r.service_account_id == service_account_id)
        ]

    def delete_rule(self, provider_id: str, rule_id: str) -> FederationRule:
        rule = self.get_rule(provider_id, rule_id)
        del self.rules[rule.id]
        self.state._record(
            "workload_identity_provider_mapping.deleted", self.state.projects.get(rule.project_id), rule.id,
            {"id": rule.id, "identity_provider_id": provider_id, "project_id": rule.project_id,
             "service_account_id": rule.service_account_id},
        )  # fmt: skip
        return rule

    # -- the exchange

    def exchange(self, body: Mapping[str, Any]) -> tuple[AccessToken, int]:
        """Verify the subject token and issue an access token; returns it and ``expires_in``.

        Checks, in order: the request, the provider, the JWT header (``kid``, ``alg``), the claims
        present, ``iss``, ``aud``, the signature against the uploaded JWKS, ``exp``/``iat``/``nbf`` on
        the emulator's clock, the service account, then exactly one enabled matching rule.
        """
        for name in ("grant_type", "subject_token_type", "subject_token", "identity_provider_id",
                     "service_account_id"):  # fmt: skip
            if name not in body or body[name] is None:
                raise OAuthFailure(400, "invalid_request", f"Missing required parameter: '{name}'.")
            if not isinstance(body[name], str) or not body[name]:
                raise OAuthFailure(400, "invalid_request", f"Invalid '{name}': expected a non-empty string.")
        if body["grant_type"] != GRANT_TYPE:
            raise OAuthFailure(400, "unsupported_grant_type", f"Unsupported grant_type; use '{GRANT_TYPE}'.")
        if body["subject_token_type"] not in SUBJECT_TOKEN_TYPES:
            raise OAuthFailure(
                400, "invalid_request", "Unsupported subject_token_type; use " + " or ".join(SUBJECT_TOKEN_TYPES) + "."
            )
        provider = self.providers.get(body["identity_provider_id"])
        if provider is None:
            raise _bad_grant(f"No workload identity provider found with id '{body['identity_provider_id']}'.")
        if not provider.enabled:
            raise _bad_grant(f"Workload identity provider '{provider.id}' is disabled.")
        claims = self._verify(provider, body["subject_token"])
        now = self.state.now()
        sa_id = body["service_account_id"]
        enabled = [r for r in self.rules.values() if r.provider_id == provider.id and r.service_account_id == sa_id
                   and r.enabled]  # fmt: skip
        attributes = evaluate_transformations(provider.attribute_transformations, claims)
        matching = [r for r in enabled if rule_matches(r, claims, attributes)]
        if not matching:
            raise _bad_grant(
                f"No enabled federation rule of provider '{provider.id}' for service account '{sa_id}' matches the "
                "subject token's claims."
            )
        if len(matching) > 1:
            raise _bad_grant(
                f"{len(matching)} enabled federation rules of provider '{provider.id}' for service account "
                f"'{sa_id}' match the subject token; exactly one must match."
            )
        rule = matching[0]
        if not self._rule_usable(rule):
            raise _bad_grant(f"Service account '{sa_id}' does not exist or its project is archived.")
        expires_in = min(MAX_ACCESS_TOKEN_SECONDS, int(claims["exp"] - now))
        token = AccessToken(
            value=ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(48),
            provider_id=provider.id,
            rule_id=rule.id,
            project_id=rule.project_id,
            service_account_id=sa_id,
            scopes=list(rule.permissions.scopes) if rule.permissions.type == "restricted" else [],
            issued_at=now,
            expires_at=now + expires_in,
        )
        self._forget_expired(now)
        self.tokens[token.value] = token
        return token, expires_in

    def _verify(self, provider: Provider, subject_token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(subject_token)
            unverified = jwt.decode(subject_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _bad_subject("The subject token is not a well-formed JWT.") from None
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or not kid:
            raise _bad_subject("The subject token's header has no 'kid'.")
        if alg not in ALGORITHMS:
            raise _bad_subject(
                f"The subject token's algorithm '{alg}' is not supported; use one of {', '.join(ALGORITHMS)}."
            )
        missing = [c for c in REQUIRED_CLAIMS if c not in unverified]
        if missing:
            raise _bad_subject(f"The subject token lacks required claim(s): {', '.join(missing)}.")
        if not isinstance(unverified["iss"], str) or unverified["iss"].rstrip("/") != provider.issuer.rstrip("/"):
            raise _bad_subject("The subject token's 'iss' does not match the provider's issuer.")
        if not _audience_ok(unverified["aud"], provider.audience):
            raise _bad_subject("The subject token's 'aud' does not match the provider's audience.")
        if provider.verification.get("type") != "uploaded_jwks":
            raise _bad_subject(
                "The provider verifies with discovery, which the emulator does not support; upload the JWKS "
                "(verification.type 'uploaded_jwks')."
            )
        jwk = next((k for k in provider.verification["jwks"]["keys"] if k.get("kid") == kid), None)
        if jwk is None:
            raise _bad_subject(f"The subject token's kid '{kid}' is not in the provider's JWKS.")
        if "alg" in jwk and jwk["alg"] != alg:  # no algorithm switching against a key that names its own
            raise _bad_subject(f"The subject token's algorithm '{alg}' is not the algorithm of key '{kid}'.")
        try:
            key = jwt.PyJWK.from_dict(jwk, algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                subject_token,
                key=key,
                algorithms=[alg],
                # Time and audience are checked below against the emulator's (shiftable) clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False,
                         "verify_iss": False, "verify_sub": False, "verify_jti": False},
            )  # fmt: skip
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _bad_subject("The subject token's signature does not verify with the provider's JWKS.") from None
        now = self.state.now()
        for name in ("exp", "iat"):
            if isinstance(claims[name], bool) or not isinstance(claims[name], int | float):
                raise _bad_subject(f"The subject token's '{name}' is not a number.")
        if claims["exp"] <= now:
            raise _bad_subject("The subject token has expired.")
        if claims["iat"] > now + CLOCK_SKEW_SECONDS:
            raise _bad_subject("The subject token's 'iat' is in the future.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and not isinstance(nbf, bool) and nbf > now + CLOCK_SKEW_SECONDS:
            raise _bad_subject("The subject token is not valid yet ('nbf').")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise _bad_subject("The subject token's 'sub' must be a non-empty string.")
        return claims

    def _rule_usable(self, rule: FederationRule) -> bool:
        project = self.state.projects.get(rule.project_id)
        return project is not None and not project.archived and rule.service_account_id in project.service_accounts

    def _forget_expired(self, now: int) -> None:
        for value in [v for v, t in self.tokens.items() if t.expires_at <= now]:
            del self.tokens[value]

    def known_token(self, value: str) -> bool:
        """Whether ``value`` is an access token this emulator issued (live or not); for the 401 wording."""
        return value.startswith(ACCESS_TOKEN_PREFIX)

    def authenticate(self, value: str) -> ApiKey | None:
        """The principal of a live access token, as an unregistered ``ApiKey`` whose id is the service account's.

        ``None`` when the token is unknown, expired, or its rule, provider or service account is gone or
        disabled (see the module docstring).
        """
        from .state import ApiKey  # deferred: state imports this module

        token = self.tokens.get(value)
        if token is None or token.expires_at <= self.state.now():
            return None
        rule = self.rules.get(token.rule_id)
        provider = self.providers.get(token.provider_id)
        if rule is None or not rule.enabled or provider is None or not provider.enabled or not self._rule_usable(rule):
            return None
        return ApiKey(
            id=token.service_account_id,
            value="",  # the bearer value stays in the token table only
            name="workload identity access token",
            project_id=token.project_id,
            owner_type="service_account",
            owner_id=token.service_account_id,
            created_at=token.issued_at,
            scopes=list(token.scopes),
            expires_at=token.expires_at,
        )

    # -- persistence

    def to_json(self) -> dict[str, Any]:
        return {
            "providers": [asdict(p) for p in self.providers.values()],
            "rules": [asdict(r) for r in self.rules.values()],
            "tokens": [asdict(t) for t in self.tokens.values()],
        }

    def load_json(self, data: Mapping[str, Any]) -> None:
        self.providers = {p["id"]: Provider(**p) for p in data.get("providers", [])}
        self.rules = {}
        for raw in data.get("rules", []):
            rule = FederationRule(**{k: v for k, v in raw.items() if k != "permissions"})
            rule.permissions = Permissions(**raw["permissions"])
            self.rules[rule.id] = rule
        self.tokens = {t["value"]: AccessToken(**t) for t in data.get("tokens", [])}
