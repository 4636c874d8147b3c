"""Operator settings, read once when ``openai-operator run`` starts.

Every setting is a flag of ``run`` and the same name as an environment variable with the prefix
``OPENAI_OPERATOR_`` (``--key-resync-interval`` is ``OPENAI_OPERATOR_KEY_RESYNC_INTERVAL``). The
admin key and the API base come from ``OPENAI_ADMIN_KEY`` and ``OPENAI_BASE_URL``, never from a
tenant's object. Durations use the same Go syntax as the CRDs (``90s``, ``5m``, ``1h30m``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from openai_operator.openai.client import DEFAULT_BASE_URL
from openai_operator.secretvalue import SecretValue

__all__ = ["DEFAULT_BASE_URL", "OperatorConfig"]

DEFAULT_VAULT_PATH_PREFIX = "openai/{namespace}/"
DEFAULT_FINGERPRINT_KEY = b"openai-operator/destination-fingerprint/v1"


@dataclass(frozen=True)
class OperatorConfig:
    """What the operator needs to know besides the objects it watches."""

    admin_key: SecretValue
    base_url: str = DEFAULT_BASE_URL
    delivered_base_url: str | None = None
    """Written to each Secret's ``OPENAI_BASE_URL`` key; defaults to ``base_url``."""
    key_resync_interval: timedelta = timedelta(minutes=5)
    """How often each OpenAIKey is re-checked (policy, destinations, due work) without a change."""
    project_resync_interval: timedelta = timedelta(minutes=10)
    inventory_interval: timedelta = timedelta(minutes=10)
    """How often each project's service accounts are listed (one paged list) to find credentials
    deleted outside the operator and orphans."""
    clusterwide: bool = True
    """Whether every namespace is watched; only then can the inventory tell an orphan for sure."""
    key_expiry_margin: timedelta = timedelta(days=7)
    """Added to rotation period + grace for ``expires_in_seconds`` (the backstop lifetime)."""
    default_key_lifetime: timedelta = timedelta(days=90)
    """Backstop lifetime of keys that have no rotation schedule."""
    vault_path_prefix: str = DEFAULT_VAULT_PATH_PREFIX
    vault_addr: str | None = None
    vault_token: SecretValue | None = None
    vault_kubernetes_role: str | None = None
    fingerprint_key: bytes = field(default=DEFAULT_FINGERPRINT_KEY, repr=False)
    """HMAC key of destination fingerprints. Keys are long random strings, so the fingerprint does
    not weaken them; a private value here only stops anyone from confirming a guessed key."""
    metrics_port: int | None = 8080
    log_format: str = "json"

    @property
    def secret_base_url(self) -> str:
        return self.delivered_base_url or self.base_url

    def vault_prefix_for(self, namespace: str) -> str:
        return self.vault_path_prefix.format(namespace=namespace)
