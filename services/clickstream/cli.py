"""``python -m clickstream``: run a process or administer apps and destinations."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import psycopg

from clickstream import storage
from clickstream.config import Settings
from clickstream.cors import InvalidOrigin, parse_origins
from clickstream.destination_settings import InvalidSettings, parse_settings, shown_settings
from clickstream.jsonlog import configure_logging


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Clickstream pipeline: Event API, router, destination workers."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    ctx.obj = settings


@main.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Apply pending database migrations."""
    from clickstream.migrate import migrate as run_migrations

    applied = run_migrations(settings.postgres_dsn)
    click.echo(f"applied {len(applied)} migration(s)")


@main.command("event-api")
@click.option("--bind", help="host:port to listen on [env EVENT_API_BIND; 0.0.0.0:8080]")
@click.option("--workers", type=click.IntRange(1, 256),
              help="worker processes [env WEB_CONCURRENCY; cores]")
def event_api(bind: str | None, workers: int | None) -> None:
    """Serve the Event API."""
    from clickstream.event_api_server import serve

    serve(bind, workers)


@main.command()
@click.pass_obj
def router(settings: Settings) -> None:
    """Route raw events to destination topics, exactly once."""
    from clickstream.router import run_router

    run_router(settings)


@main.command()
@click.option("--kind", type=click.Choice(storage.KINDS), required=True)
@click.pass_obj
def worker(settings: Settings, kind: str) -> None:
    """Deliver routed events to every enabled destination of one kind."""
    from clickstream.workers import run_worker

    run_worker(settings, kind)


@main.command()
@click.option("--destination", "destination_id", type=int, required=True)
@click.pass_obj
def replay(settings: Settings, destination_id: int) -> None:
    """Send a destination's dead letters to it again."""
    from clickstream.replay import replay_dead_letters

    try:
        count = replay_dead_letters(settings, destination_id)
    except storage.NotFound as exc:
        _fail(str(exc))
    click.echo(f"replayed {count} dead letter(s) to destination {destination_id}")


# -- admin ------------------------------------------------------------------------


@main.group()
def admin() -> None:
    """Create and change apps, write keys and destinations."""


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.postgres_dsn, autocommit=True)


def _emit(as_json: bool, value: Any, text: str) -> None:
    click.echo(json.dumps(value, default=str) if as_json else text)


output_option = click.option("--output", type=click.Choice(["text", "json"]), default="text")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@admin.group()
def app() -> None:
    """Apps: one per tracked product; each has write keys."""


_ORIGINS_HELP = ("Comma-separated browser origins allowed to send events "
                 "(https://shop.example.com, https://*.example.com), 'any' or 'none'.")


def _parse_origins_option(value: str) -> tuple[str, ...] | None:
    """'any' -> None (every origin), 'none' -> () (no browser), else the listed origins."""
    word = value.strip().lower()
    if word == "any":
        return None
    if word == "none":
        return ()
    listed = _split(value)
    if not listed:
        _fail("give origins separated by commas, 'any' or 'none'")
    try:
        return parse_origins(listed)
    except InvalidOrigin as exc:
        _fail(f"{exc}")
        raise


def _origins_text(origins: tuple[str, ...] | None) -> str:
    if origins is None:
        return "any"
    return ",".join(origins) or "none"


@app.command("create")
@click.argument("name")
@click.option("--rate-limit", type=click.IntRange(min=1), help="Events/s per Event API process.")
@click.option("--allowed-origins", default="any", show_default=True, help=_ORIGINS_HELP)
@output_option
@click.pass_obj
def app_create(settings: Settings, name: str, rate_limit: int | None, allowed_origins: str,
               output: str) -> None:
    """Create an app and print its first write key (shown only this once)."""
    origins = _parse_origins_option(allowed_origins)
    with _connect(settings) as conn, conn.transaction():
        if conn.execute("SELECT 1 FROM clickstream.apps WHERE name = %s", (name,)).fetchone():
            _fail(f"app {name!r} already exists")
        new = storage.create_app(conn, name, rate_limit, origins)
        key = storage.add_write_key(conn, new.id)
    _emit(output == "json", {"id": new.id, "name": name, "write_key": key,
                             "allowed_origins": origins},
          f"app {new.id} {name}\nwrite key: {key}")


@app.command("list")
@output_option
@click.pass_obj
def app_list(settings: Settings, output: str) -> None:
    with _connect(settings) as conn:
        apps = storage.list_apps(conn)
    _emit(output == "json", [vars(a) for a in apps],
          "\n".join(f"{a.id}\t{a.name}\trate_limit={a.rate_limit or '-'}"
                    f"\torigins={_origins_text(a.allowed_origins)}" for a in apps))


@app.command("set-allowed-origins")
@click.argument("app_ref")
@click.argument("origins")
@click.pass_obj
def app_set_allowed_origins(settings: Settings, app_ref: str, origins: str) -> None:
    """Set the browser origins that may send the app's events.

    ORIGINS: comma-separated (https://shop.example.com,https://*.example.com), 'any'
    (the default) or 'none' (server-side tracking only). Takes effect at once.
    """
    parsed = _parse_origins_option(origins)
    with _connect(settings) as conn:
        target = _get_app(conn, app_ref)
        storage.set_allowed_origins(conn, target.id, parsed)
    click.echo(f"app {target.name}: allowed origins {_origins_text(parsed)}")


@app.command("set-rate-limit")
@click.argument("app_ref")
@click.argument("rate_limit")
@click.pass_obj
def app_set_rate_limit(settings: Settings, app_ref: str, rate_limit: str) -> None:
    """Set events/s per Event API process; 'none' removes the limit."""
    limit = None if rate_limit == "none" else int(rate_limit)
    with _connect(settings) as conn:
        target = _get_app(conn, app_ref)
        storage.set_rate_limit(conn, target.id, limit)
    click.echo(f"app {target.name}: rate limit {limit or 'none'}")


def _get_app(conn: psycopg.Connection, ref: str) -> storage.App:
    try:
        return storage.get_app(conn, ref)
    except storage.NotFound as exc:
        _fail(str(exc))
        raise


@admin.group()
def key() -> None:
    """Write keys: add a new one, then revoke the old one to rotate."""


@key.command("add")
@click.argument("app_ref")
@output_option
@click.pass_obj
def key_add(settings: Settings, app_ref: str, output: str) -> None:
    with _connect(settings) as conn:
        target = _get_app(conn, app_ref)
        new_key = storage.add_write_key(conn, target.id)
    _emit(output == "json", {"app": target.name, "write_key": new_key}, f"write key: {new_key}")


@key.command("list")
@click.argument("app_ref")
@output_option
@click.pass_obj
def key_list(settings: Settings, app_ref: str, output: str) -> None:
    with _connect(settings) as conn:
        keys = storage.list_write_keys(conn, _get_app(conn, app_ref).id)
    _emit(output == "json", [vars(k) for k in keys],
          "\n".join(f"{k.id}\t{k.key_prefix}…\t{'revoked' if k.revoked else 'active'}"
                    for k in keys))


@key.command("revoke")
@click.argument("key_id", type=int)
@click.pass_obj
def key_revoke(settings: Settings, key_id: int) -> None:
    with _connect(settings) as conn:
        try:
            storage.revoke_write_key(conn, key_id)
        except storage.NotFound as exc:
            _fail(str(exc))
    click.echo(f"write key {key_id} revoked")


@admin.group()
def destination() -> None:
    """Destinations: where an app's events are delivered."""


def _parse_setting(pair: str) -> tuple[str, Any]:
    name, sep, value = pair.partition("=")
    if not sep:
        raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--setting")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()] if values else []


@destination.command("create")
@click.argument("app_ref")
@click.option("--name", required=True, help="Name used in events' `integrations` map.")
@click.option("--kind", type=click.Choice(storage.KINDS), required=True)
@click.option("--setting", "setting_pairs", multiple=True, metavar="NAME=VALUE",
              help="A setting (value parsed as JSON when it is JSON). Repeatable.")
@click.option("--secret-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the signing secret (webhook).")
@click.option("--types", help="Comma-separated event types to deliver (default: all).")
@click.option("--events", help="Comma-separated track event names to deliver (default: all).")
@click.option("--disabled", is_flag=True)
@output_option
@click.pass_obj
def destination_create(settings: Settings, app_ref: str, name: str, kind: str,
                       setting_pairs: tuple[str, ...], secret_file: Path | None,
                       types: str | None, events: str | None, disabled: bool,
                       output: str) -> None:
    """Add a destination to an app."""
    raw_settings = dict(_parse_setting(p) for p in setting_pairs)
    try:
        parse_settings(kind, raw_settings)
    except InvalidSettings as exc:
        _fail(str(exc))
    filters = {k: v for k, v in (("types", _split(types)), ("events", _split(events))) if v}
    secret = secret_file.read_text().strip() if secret_file else None
    with _connect(settings) as conn, conn.transaction():
        target = _get_app(conn, app_ref)
        new = storage.create_destination(conn, target.id, name, kind, raw_settings, secret,
                                         filters, enabled=not disabled)
    _emit(output == "json", _destination_view(new), f"destination {new.id} {kind} {name}")


def _destination_view(d: storage.Destination) -> dict[str, Any]:
    view = {k: v for k, v in vars(d).items() if k != "secret"}
    view["settings"] = shown_settings(d.settings)
    view["secret"] = "set" if d.secret else None
    return view


@destination.command("list")
@click.option("--app", "app_ref")
@output_option
@click.pass_obj
def destination_list(settings: Settings, app_ref: str | None, output: str) -> None:
    with _connect(settings) as conn:
        app_id = _get_app(conn, app_ref).id if app_ref else None
        found = storage.list_destinations(conn, app_id)
    _emit(output == "json", [_destination_view(d) for d in found],
          "\n".join(f"{d.id}\tapp={d.app_id}\t{d.kind}\t{d.name}\t"
                    f"{'enabled' if d.enabled else 'disabled'}\t{json.dumps(d.filters)}"
                    for d in found))


def _change_destination(settings: Settings, destination_id: int, **changes: Any) -> None:
    with _connect(settings) as conn:
        try:
            storage.update_destination(conn, destination_id, **changes)
        except storage.NotFound as exc:
            _fail(str(exc))


@destination.command("enable")
@click.argument("destination_id", type=int)
@click.pass_obj
def destination_enable(settings: Settings, destination_id: int) -> None:
    _change_destination(settings, destination_id, enabled=True)
    click.echo(f"destination {destination_id} enabled")


@destination.command("disable")
@click.argument("destination_id", type=int)
@click.pass_obj
def destination_disable(settings: Settings, destination_id: int) -> None:
    _change_destination(settings, destination_id, enabled=False)
    click.echo(f"destination {destination_id} disabled")


@destination.command("delete")
@click.argument("destination_id", type=int)
@click.pass_obj
def destination_delete(settings: Settings, destination_id: int) -> None:
    with _connect(settings) as conn:
        try:
            storage.delete_destination(conn, destination_id)
        except storage.NotFound as exc:
            _fail(str(exc))
    click.echo(f"destination {destination_id} deleted")


@destination.command("status")
@click.argument("destination_id", type=int)
@click.pass_obj
def destination_status(settings: Settings, destination_id: int) -> None:
    """Delivery counts and the last error."""
    with _connect(settings) as conn:
        try:
            state = storage.get_delivery_state(conn, destination_id)
        except storage.NotFound as exc:
            _fail(str(exc))
    click.echo(json.dumps(state, default=str))
