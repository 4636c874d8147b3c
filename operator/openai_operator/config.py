"""Operator settings, read once when ``openai-operator run`` starts.

Every setting is a flag of ``run`` and the same name as an environment variable with the prefix
``OPENAI_OPERATOR_`` (``--key-resync-interval`` is ``OPENAI_OPERATOR_KEY_RESYNC_INTERVAL``). The
admin key and the API base come from ``OPENAI_ADMIN_KEY`` and ``OPENAI_BASE_URL``, never from a
tenant's object. Durations use the same Go syntax as the CRDs (``90s``, ``5m``, ``1h30m``).

The fingerprint HMAC key (:attr:`OperatorConfig.fingerprint_key`) is a random per-install secret,
never a constant: ``--fingerprint-key-file`` (``OPENAI_OPERATOR_FINGERPRINT_KEY_FILE``) names a file
holding it (the Helm chart creates a Secret with a random value and mounts it there), or
``OPENAI_OPERATOR_FINGERPRINT_KEY`` holds it directly (read as a
:class:`~openai_operator.secretvalue.SecretValue`, never logged, and registered with the redactor).
The file wins when both are set. Without either the operator refuses to start; there is no
fallback value. See :func:`load_fingerprint_key`.

The key must stay the same across restarts and upgrades: status records
``HMAC(key, delivered value)`` for every destination, and a different key makes every recorded
fingerprint look like drift, which rotates every key once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

from openai_operator.openai.client import DEFAULT_BASE_URL
from openai_operator.secretvalue import SecretValue

__all__ = [
    "DEFAULT_BASE_URL",
    "FINGERPRINT_KEY_ENV",
    "FINGERPRINT_KEY_FILE_ENV",
    "INSTANCE_ID_PATTERN",
    "MIN_FINGERPRINT_KEY_LENGTH",
    "ConfigError",
    "OperatorConfig",
    "load_fingerprint_key",
    "validate_instance_id",
]

DEFAULT_VAULT_PATH_PREFIX: Final = "openai/{namespace}/"
FINGERPRINT_KEY_ENV: Final = "OPENAI_OPERATOR_FINGERPRINT_KEY"
FINGERPRINT_KEY_FILE_ENV: Final = "OPENAI_OPERATOR_FINGERPRINT_KEY_FILE"
MIN_FINGERPRINT_KEY_LENGTH: Final = 32
"""Characters (bytes once encoded) a fingerprint key needs at least; the chart makes 64."""
INSTANCE_ID_PATTERN: Final = re.compile(r"[a-z0-9]{1,12}")
_SHARD_RE: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")
"""What ``--instance-id`` may be: it is part of every service-account name the operator creates."""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def validate_instance_id(value: str) -> str:
    """Return ``value`` if it is a valid instance id (``[a-z0-9]{1,12}``), else raise :class:`ConfigError`."""
    if not INSTANCE_ID_PATTERN.fullmatch(value):
        raise ConfigError(
            f"instance id {value!r} must be 1 to 12 lower-case letters or digits ([a-z0-9]{{1,12}})"
        )
    return value


def load_fingerprint_key(file: str | Path | None, env_value: SecretValue | None) -> bytes:
    """The fingerprint HMAC key from ``file`` (trailing whitespace stripped), else from ``env_value``.

    Raises :class:`ConfigError` when neither is given, the file cannot be read, or the key is shorter
    than :data:`MIN_FINGERPRINT_KEY_LENGTH`. Messages name the setting, never the value.
    """
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the fingerprint key file {file} ({type(exc).__name__})") from None
        source = f"the fingerprint key file {file}"
    elif env_value is not None and env_value.reveal().strip():
        text = env_value.reveal().strip()
        source = FINGERPRINT_KEY_ENV
    else:
        raise ConfigError(
            "no fingerprint key: set --fingerprint-key-file (env "
            f"{FINGERPRINT_KEY_FILE_ENV}) or {FINGERPRINT_KEY_ENV} to a random value of at least "
            f"{MIN_FINGERPRINT_KEY_LENGTH} characters that stays the same across restarts "
            "(the Helm chart creates and mounts one); e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    key = text.encode()
    if len(key) < MIN_FINGERPRINT_KEY_LENGTH:
        raise ConfigError(
            f"the fingerprint key from {source} is {len(key)} bytes; it needs at least {MIN_FINGERPRINT_KEY_LENGTH}"
        )
    return key


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
    spend_poll_interval: timedelta = timedelta(minutes=5)
    """How often the organisation's costs are read (one paged ``GET /organization/costs``) and every
    object's ``status.spend`` brought up to date. OpenAI's cost buckets are daily and lag, so
    polling faster than a few minutes buys nothing."""
    clusterwide: bool = True
    """Whether every namespace is watched (no ``--namespace``)."""
    watched_namespaces: tuple[str, ...] = ()
    """The ``--namespace`` patterns (Kopf's syntax); empty: every namespace. The inventory judges
    orphans only in namespaces these serve, since only there does it know every key."""
    shard: str | None = None
    """This operator's shard (``--shard``): it records itself in ``status.shard`` of what it acts on,
    and takes an object over from another shard only when no live replica of that one serves the
    object's namespace (``docs/sharding.md``). ``None``: not sharded, no shard records."""
    shard_member: str = "local"
    """This replica's name within its shard (the pod name)."""
    shard_lease_namespace: str = "default"
    """Where the replicas of every shard keep their Leases (the operator's own namespace)."""
    manage_projects: bool = True
    """Whether this operator reconciles OpenAIProjects (and the other cluster-scoped kinds). With
    several shards exactly one does; the others only read projects, for the key policy."""
    key_expiry_margin: timedelta = timedelta(days=7)
    """Added to rotation period + grace for ``expires_in_seconds`` (the backstop lifetime)."""
    default_key_lifetime: timedelta = timedelta(days=90)
    """Backstop lifetime of keys that have no rotation schedule."""
    vault_path_prefix: str = DEFAULT_VAULT_PATH_PREFIX
    vault_addr: str | None = None
    vault_token: SecretValue | None = None
    vault_kubernetes_role: str | None = None
    fingerprint_key: bytes = field(default=b"", repr=False)
    """HMAC key of destination fingerprints: the per-install random value from
    :func:`load_fingerprint_key`. Required (empty is refused); there is no default value. Keys are
    long random strings, so the fingerprint does not weaken them; a private value here stops anyone
    from confirming a guessed key against a fingerprint copied out of status."""
    metrics_port: int | None = 8080
    metrics_address: str = "0.0.0.0"  # noqa: S104
    """Where ``/metrics`` listens: all interfaces (Prometheus scrapes the pod IP, a NetworkPolicy limits
    who may), or ``127.0.0.1`` behind an authenticating proxy sidecar (the chart's ``metrics.authProxy``)."""
    log_format: str = "json"
    instance_id: str | None = None
    """This installation's id (``[a-z0-9]{1,12}``), part of every service-account name it creates
    (``k8s.<instanceId>.<namespace>.<name>.r<N>``) so two clusters sharing an OpenAI project never
    touch each other's accounts. ``None``: derived from the cluster (the kube-system namespace's uid)."""
    min_rotation_interval: timedelta = timedelta(minutes=5)
    """The global floor on rotation frequency: no key rotates on a schedule more often than this,
    whatever its spec or project policy says. ``0`` disables the floor (tests)."""
    verify_attempts: int = 3
    """How many times a new key is verified (``GET /v1/models``) within one pass before the issue is
    given up for this pass (transient failures only)."""
    admin_api_rate: float | None = None
    """The Admin API request budget: at most this many requests per second on average, shared by every
    handler and poller of the process (``None``: no pacing). Set it below the organisation's Admin API
    rate limit so OpenAI never has to answer 429; a 429's ``Retry-After`` holds every call either way.
    The budget is a token bucket: any one second may see up to ``admin_api_burst + admin_api_rate``
    requests, so under a limit of L requests per second keep the two together at or below L."""
    admin_api_burst: int = 10
    """How many Admin API requests may go at once after a quiet spell (only with ``admin_api_rate``)."""

    def __post_init__(self) -> None:
        if not self.fingerprint_key:
            raise ConfigError("fingerprint_key must be set (see load_fingerprint_key); there is no default")
        if self.instance_id is not None:
            validate_instance_id(self.instance_id)
        if self.min_rotation_interval < timedelta(0):
            raise ConfigError("min_rotation_interval must not be negative")
        if self.spend_poll_interval <= timedelta(0):
            raise ConfigError("spend_poll_interval must be positive")
        if self.verify_attempts < 1:
            raise ConfigError("verify_attempts must be at least 1")
        if self.admin_api_rate is not None and self.admin_api_rate <= 0:
            raise ConfigError("admin_api_rate must be positive (or unset for no pacing)")
        if self.shard is not None and not _SHARD_RE.fullmatch(self.shard):
            raise ConfigError(f"shard {self.shard!r} must be 1 to 40 lower-case letters, digits or '-'")
        if self.admin_api_burst < 1:
            raise ConfigError("admin_api_burst must be at least 1")

    @property
    def secret_base_url(self) -> str:
        return self.delivered_base_url or self.base_url

    def vault_prefix_for(self, namespace: str) -> str:
        return self.vault_path_prefix.format(namespace=namespace)
