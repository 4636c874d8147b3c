"""The single console script, ``openai-operator``, with one subcommand per job.

Subcommands import their implementation lazily, so ``openai-operator devstack`` does not pay for
importing Kopf and ``openai-operator run`` does not import the emulator.
"""

from __future__ import annotations

import sys
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
def run(
    namespaces: tuple[str, ...], standalone: bool, peering_name: str, priority: int, log_format: str, log_level: str,
    metrics_port: int, health_port: int, key_resync_interval: timedelta, project_resync_interval: timedelta,
    inventory_interval: timedelta, spend_poll_interval: timedelta, vault_path_prefix: str,
    delivered_base_url: str | None,
    fingerprint_key_file: Path | None, instance_id: str | None, min_rotation_interval: timedelta,
    verify_attempts: int,
) -> None:
    """Run the operator. The admin key comes from OPENAI_ADMIN_KEY, the API base from OPENAI_BASE_URL,
    the fingerprint key from --fingerprint-key-file or OPENAI_OPERATOR_FINGERPRINT_KEY."""
    import os

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
            vault_path_prefix=vault_path_prefix,
            vault_addr=os.environ.get("VAULT_ADDR"),
            vault_token=SecretValue(vault_token) if vault_token else None,
            vault_kubernetes_role=os.environ.get(_env("VAULT_KUBERNETES_ROLE")),
            fingerprint_key=fingerprint_key,
            metrics_port=metrics_port or None,
            log_format=log_format,
            instance_id=instance_id,
            min_rotation_interval=min_rotation_interval,
            verify_attempts=verify_attempts,
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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=int, help="Port to listen on (0 picks a free one).")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file to load state from at start and save it to on change, so a demo survives a restart.",
)
@click.option(
    "--admin-key",
    envvar="OPENAI_ADMIN_KEY",
    default=None,
    help="Admin key the emulator accepts; generated (and printed redacted) when omitted.",
)
def emulator(host: str, port: int, state_file: Path | None, admin_key: str | None) -> None:
    """Serve the local OpenAI API emulator (admin API, data plane, costs, fault injection)."""
    from openai_operator.emulator.server import serve

    serve(host=host, port=port, state_file=state_file, admin_key=admin_key)


@main.group()
def devstack() -> None:
    """Start or stop the local control plane, OpenBao and the emulator."""


_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".devstack"),
    show_default=True,
    help="Folder for the stack's data, logs, kubeconfig and env file.",
)


@devstack.command("build")
def devstack_build() -> None:
    """Build (or find in the cache) every program the stack runs, and print where each one is."""
    from openai_operator.devstack.binaries import ensure_toolset

    for name, path in ensure_toolset().all().items():
        click.echo(f"{name}\t{path}")


@devstack.command("up")
@_state_dir_option
@click.option("--with-vault/--without-vault", default=True, show_default=True, help="Start OpenBao.")
@click.option("--with-emulator/--without-emulator", default=True, show_default=True, help="Start the emulator.")
def devstack_up(state_dir: Path, with_vault: bool, with_emulator: bool) -> None:
    """Start everything in the background, wait until ready, and write STATE_DIR/env."""
    from openai_operator.devstack import stack
    from openai_operator.devstack.processes import StartupError

    try:
        env_file = stack.up(state_dir, with_vault=with_vault, with_emulator=with_emulator)
    except StartupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"ready; run: source {env_file}")


@devstack.command("down")
@_state_dir_option
def devstack_down(state_dir: Path) -> None:
    """Stop everything `devstack up` started from STATE_DIR."""
    from openai_operator.devstack import stack

    stack.down(state_dir)


@devstack.command("env")
@_state_dir_option
def devstack_env(state_dir: Path) -> None:
    """Print the export lines of a running stack."""
    env_file = state_dir / "env"
    if not env_file.exists():
        raise click.ClickException(f"no stack in {state_dir}: run `openai-operator devstack up` first")
    click.echo(env_file.read_text(), nl=False)


@main.command()
def demo() -> None:
    """Run the main job on the embedded local stack."""
    click.echo(
        "The demo is not built yet: it lands with the packaging issue. "
        "Meanwhile `openai-operator devstack up` starts the stack it will use.",
        err=True,
    )
    sys.exit(2)
