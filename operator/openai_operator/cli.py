"""The operator's console script, ``openai-operator``: ``run`` is the operator.

The emulator (``openai-emulator``) and the local stack and demo (``openai-devstack``) are separate
distributions in this repository with their own console scripts; this package never imports them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="openai-operator")
def main() -> None:
    """Declarative OpenAI projects and API keys for Kubernetes."""


class _Duration(click.ParamType):  # type: ignore[type-arg]
    """A Go-style duration (``90s``, ``5m``, ``1h30m``), as in the CRDs."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        from openai_operator.model.durations import parse_duration

        if not isinstance(value, str):
            return value
        try:
            return parse_duration(value)
        except ValueError as error:
            self.fail(f"{value!r} is not a duration like 90s, 5m or 1h30m ({error})", param, ctx)


DURATION = _Duration()


def _instance_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from openai_operator.config import ConfigError, validate_instance_id

    if value is None or value == "":
        return None
    try:
        return validate_instance_id(value)
    except ConfigError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def _env(name: str) -> str:
    return f"OPENAI_OPERATOR_{name}"


@main.command(context_settings={"show_default": True})
@click.option("--namespace", "-n", "namespaces", multiple=True, envvar=_env("NAMESPACES"),
              help="Watch only these namespaces for OpenAIKeys (default: all namespaces).")
@click.option("--standalone", is_flag=True, envvar=_env("STANDALONE"),
              help="No peering: act even if other replicas run (tests, single replica).")
@click.option("--peering-name", default="openai-operator", envvar=_env("PEERING_NAME"),
              help="Name of the ClusterKopfPeering object the replicas elect the active one through.")
@click.option("--priority", type=int, default=0, envvar=_env("PRIORITY"),
              help="Peering priority; the highest-priority replica is the active one.")
@click.option("--log-format", type=click.Choice(["json", "console"]), default="json", envvar=_env("LOG_FORMAT"),
              help="json: one JSON object per line; console: for people.")
@click.option("--log-level", default="INFO", envvar=_env("LOG_LEVEL"), help="DEBUG, INFO, WARNING or ERROR.")
@click.option("--metrics-port", type=int, default=8080, envvar=_env("METRICS_PORT"),
              help="Port of the Prometheus /metrics endpoint (0 disables it).")
@click.option("--metrics-address", default="0.0.0.0", envvar=_env("METRICS_ADDRESS"),  # noqa: S104
              help="Address /metrics listens on (127.0.0.1 behind an authenticating proxy sidecar).")
@click.option("--health-port", type=int, default=8081, envvar=_env("HEALTH_PORT"),
              help="Port of the liveness probe /healthz (0 disables it).")
@click.option("--key-resync-interval", type=DURATION, default="5m", envvar=_env("KEY_RESYNC_INTERVAL"),
              help="How often every OpenAIKey is re-checked without a change.")
@click.option("--project-resync-interval", type=DURATION, default="10m", envvar=_env("PROJECT_RESYNC_INTERVAL"),
              help="How often every OpenAIProject is compared with OpenAI (name, rate limits, spend limit).")
@click.option("--inventory-interval", type=DURATION, default="10m", envvar=_env("INVENTORY_INTERVAL"),
              help="How often each project's service accounts are inventoried (drift and orphans).")
@click.option("--spend-poll-interval", type=DURATION, default="5m", envvar=_env("SPEND_POLL_INTERVAL"),
              help="How often the organisation's costs are read and status.spend updated (one paged call).")
@click.option("--vault-path-prefix", default="openai/{namespace}/", envvar=_env("VAULT_PATH_PREFIX"),
              help="Vault paths of a key must stay under this prefix ({namespace} is the key's namespace).")
@click.option("--delivered-base-url", default=None, envvar=_env("DELIVERED_BASE_URL"),
              help="OPENAI_BASE_URL written to Secrets (default: the API base the operator uses).")
@click.option("--fingerprint-key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar=_env("FINGERPRINT_KEY_FILE"),
              help="File holding this install's random HMAC key for destination fingerprints (the chart mounts "
                   "one). Alternatively put the key itself in OPENAI_OPERATOR_FINGERPRINT_KEY. Required.")
@click.option("--instance-id", default=None, envvar=_env("INSTANCE_ID"), callback=_instance_id,
              help="This install's id in service-account names, [a-z0-9]{1,12} (default: derived from the cluster).")
@click.option("--min-rotation-interval", type=DURATION, default="5m", envvar=_env("MIN_ROTATION_INTERVAL"),
              help="Global floor on rotation frequency: no key rotates on schedule more often (0s: no floor).")
@click.option("--verify-attempts", type=click.IntRange(min=1), default=3, envvar=_env("VERIFY_ATTEMPTS"),
              help="Verification attempts of a new key within one pass before the issue is retried later.")
@click.option("--admin-api-rate", type=click.FloatRange(min=0), default=0.0, envvar=_env("ADMIN_API_RATE"),
              help="Admin API request budget in requests per second, shared by all handlers and pollers "
                   "(0: no pacing). Any second may see rate + burst requests: keep both together under "
                   "OpenAI's per-second limit. A 429's Retry-After pauses every call either way.")
@click.option("--admin-api-burst", type=click.IntRange(min=1), default=10, envvar=_env("ADMIN_API_BURST"),
              help="Admin API requests that may go at once after a quiet spell (with --admin-api-rate).")
@click.option("--shard", default=None, envvar=_env("SHARD"),
              help="This operator's shard name, when several operators split the namespaces (--namespace) "
                   "between them; see docs/sharding.md.")
@click.option("--shard-lease-namespace", default=None, envvar=_env("SHARD_LEASE_NAMESPACE"),
              help="Namespace of the shard Leases (default: POD_NAMESPACE, else default).")
@click.option("--manage-projects/--no-manage-projects", default=True, envvar=_env("MANAGE_PROJECTS"),
              help="Reconcile OpenAIProjects (exactly one shard does); without, projects are only read.")
def run(
    namespaces: tuple[str, ...], standalone: bool, peering_name: str, priority: int, log_format: str, log_level: str,
    metrics_port: int, metrics_address: str, health_port: int, key_resync_interval: timedelta,
    project_resync_interval: timedelta,
    inventory_interval: timedelta, spend_poll_interval: timedelta, vault_path_prefix: str,
    delivered_base_url: str | None,
    fingerprint_key_file: Path | None, instance_id: str | None, min_rotation_interval: timedelta,
    verify_attempts: int, admin_api_rate: float, admin_api_burst: int, shard: str | None,
    shard_lease_namespace: str | None, manage_projects: bool,
) -> None:
    """Run the operator. The admin key comes from OPENAI_ADMIN_KEY, the API base from OPENAI_BASE_URL,
    the fingerprint key from --fingerprint-key-file or OPENAI_OPERATOR_FINGERPRINT_KEY."""
    import os
    import socket

    from openai_operator.config import (
        DEFAULT_BASE_URL,
        FINGERPRINT_KEY_ENV,
        ConfigError,
        OperatorConfig,
        load_fingerprint_key,
    )
    from openai_operator.handlers.lifecycle import RunOptions, run_operator
    from openai_operator.logging import configure_logging
    from openai_operator.redaction import register_secret
    from openai_operator.secretvalue import SecretValue

    admin_key = os.environ.get("OPENAI_ADMIN_KEY")
    if not admin_key:
        raise click.ClickException("OPENAI_ADMIN_KEY is not set: the operator needs an OpenAI admin key")
    vault_token = os.environ.get("VAULT_TOKEN")
    env_fingerprint_key = os.environ.get(FINGERPRINT_KEY_ENV)
    try:
        fingerprint_key = load_fingerprint_key(
            fingerprint_key_file, SecretValue(env_fingerprint_key) if env_fingerprint_key else None
        )
        config = OperatorConfig(
            admin_key=SecretValue(admin_key),
            base_url=os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            delivered_base_url=delivered_base_url,
            key_resync_interval=key_resync_interval,
            project_resync_interval=project_resync_interval,
            inventory_interval=inventory_interval,
            spend_poll_interval=spend_poll_interval,
            clusterwide=not namespaces,
            watched_namespaces=namespaces,
            shard=shard or None,
            shard_member=os.environ.get("POD_NAME") or socket.gethostname(),
            shard_lease_namespace=shard_lease_namespace or os.environ.get("POD_NAMESPACE") or "default",
            manage_projects=manage_projects,
            vault_path_prefix=vault_path_prefix,
            vault_addr=os.environ.get("VAULT_ADDR"),
            vault_token=SecretValue(vault_token) if vault_token else None,
            vault_kubernetes_role=os.environ.get(_env("VAULT_KUBERNETES_ROLE")),
            fingerprint_key=fingerprint_key,
            metrics_port=metrics_port or None,
            metrics_address=metrics_address,
            log_format=log_format,
            instance_id=instance_id,
            min_rotation_interval=min_rotation_interval,
            verify_attempts=verify_attempts,
            admin_api_rate=admin_api_rate or None,
            admin_api_burst=admin_api_burst,
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    # Whatever their shape, the credentials the operator was started with never reach a log or Event.
    for secret in (admin_key, vault_token, fingerprint_key):
        register_secret(secret)
    configure_logging("json" if log_format == "json" else "console", level=log_level.upper(), exclusive=True)
    run_operator(
        config,
        RunOptions(
            namespaces=namespaces, standalone=standalone, peering_name=peering_name, priority=priority,
            liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
        ),
    )
