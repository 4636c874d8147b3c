"""``openai-devstack``: build, start and stop the local stack (control plane, OpenBao, emulator)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Start or stop the local control plane, OpenBao and the emulator."""


_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".devstack"),
    show_default=True,
    help="Folder for the stack's data, logs, kubeconfig and env file.",
)


@main.command("build")
def build() -> None:
    """Build (or find in the cache) every program the stack runs, and print where each one is."""
    from openai_devstack.binaries import ensure_toolset

    for name, path in ensure_toolset().all().items():
        click.echo(f"{name}\t{path}")


@main.command("up")
@_state_dir_option
@click.option("--with-vault/--without-vault", default=True, show_default=True, help="Start OpenBao.")
@click.option("--with-emulator/--without-emulator", default=True, show_default=True, help="Start the emulator.")
def up(state_dir: Path, with_vault: bool, with_emulator: bool) -> None:
    """Start everything in the background, wait until ready, and write STATE_DIR/env."""
    from openai_devstack import stack
    from openai_devstack.processes import StartupError

    try:
        env_file = stack.up(state_dir, with_vault=with_vault, with_emulator=with_emulator)
    except StartupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"ready; run: source {env_file}")


@main.command("down")
@_state_dir_option
def down(state_dir: Path) -> None:
    """Stop everything `openai-devstack up` started from STATE_DIR."""
    from openai_devstack import stack

    stack.down(state_dir)


@main.command("env")
@_state_dir_option
def env(state_dir: Path) -> None:
    """Print the export lines of a running stack."""
    env_file = state_dir / "env"
    if not env_file.exists():
        raise click.ClickException(f"no stack in {state_dir}: run `openai-devstack up` first")
    click.echo(env_file.read_text(), nl=False)


@main.command("demo")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".devstack/demo"),
    show_default=True,
    help="Folder for the demo's stack (emptied at the start); its logs stay after the demo.",
)
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="After the last step, keep everything running until Ctrl-C (--no-wait: stop and clean up).")
def demo(state_dir: Path, wait: bool) -> None:
    """The main job on the local stack: keys delivered, rotated, spend, alerts, the leak response."""
    from openai_devstack import demo as demo_module

    raise SystemExit(demo_module.run(state_dir, wait=wait))


if __name__ == "__main__":
    main()
