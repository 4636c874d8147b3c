"""Test keys and subject tokens for the workload identity conformance tests.

The conformance suite signs its own JWTs with keys generated here (never committed): it tests the
emulator's exchange, not a cluster. The scenario tests use tokens from the real apiserver instead.
Claims mimic a projected Kubernetes ServiceAccount token: ``aud`` is an array, ``sub`` is
``system:serviceaccount:<ns>:<name>``, and a nested ``kubernetes.io`` object.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "https://api.openai.com/v1"
TOKEN_EXCHANGE_PATH = "/oauth/token"


@dataclass
class TestKey:
    """A signing key pair with a Kubernetes-style ``kid`` (SHA-256 of the public key's DER)."""

    alg: Literal["RS256", "ES256"] = "RS256"
    private: Any = field(init=False)
    kid: str = field(init=False)

    __test__ = False  # not a pytest test class

    def __post_init__(self) -> None:
        if self.alg == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = jwt.utils.base64url_encode(hashlib.sha256(der).digest()).decode()

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        out: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return out | {"kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, headers: dict[str, Any] | None = None) -> str:
        header = {"kid": self.kid if kid is None else kid} | (headers or {})
        if kid == "":
            header.pop("kid")
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=header)


def jwks(*keys: TestKey) -> dict[str, Any]:
    return {"keys": [k.jwk() for k in keys]}


def k8s_claims(
    now: int,
    *,
    namespace: str = "team",
    name: str = "app",
    issuer: str = ISSUER,
    audience: str | list[str] = AUDIENCE,
    ttl: int = 3600,
) -> dict[str, Any]:
    """The claims of a projected ServiceAccount token issued at ``now`` (emulator clock)."""
    return {
        "iss": issuer,
        "aud": [audience] if isinstance(audience, str) else audience,
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "0f6a0c4e-uid"}},
    }
