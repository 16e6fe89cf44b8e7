"""`python3 -m commander`: serve Commander's API (under gunicorn)."""

from __future__ import annotations

import sys

import click


@click.group()
def main() -> None:
    """Commander, the platform's orchestration agent."""


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--threads", type=click.IntRange(2, 256), default=16, show_default=True,
              help="Requests served at once; each event stream holds one.")
def serve(port: int, host: str, threads: int) -> None:
    """Serve the API, the registry webhook and the worker that applies changes."""
    from commander.server import run
    from commander.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    run(settings, f"{host}:{port}", threads)
