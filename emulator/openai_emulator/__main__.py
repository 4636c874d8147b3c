"""``openai-emulator`` (and ``python -m openai_emulator``): serve the local OpenAI API emulator."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option("--port", default=8787, type=int, help="Port to listen on (0 picks a free one).")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file to load state from at start and save it to on change, so a demo survives a restart.")
@click.option("--admin-key", envvar="OPENAI_ADMIN_KEY", default=None,
              help="Admin key the emulator accepts; generated (and printed redacted) when omitted.")
def main(host: str, port: int, state_file: Path | None, admin_key: str | None) -> None:
    """Serve the local OpenAI API emulator (admin API, data plane, costs, fault injection)."""
    from openai_emulator.server import serve

    serve(host=host, port=port, state_file=state_file, admin_key=admin_key)


if __name__ == "__main__":
    main()
