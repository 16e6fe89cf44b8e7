"""Warehouse destinations: events loaded into Postgres in micro-batches, with SQL
that Redshift also runs.

Each batch is one transaction: create missing tables and columns, stage the rows in
a temporary table, and insert the ones whose ``id`` (the messageId) is not loaded
yet. Redelivered events are therefore loaded once. ``id`` is declared PRIMARY KEY:
Postgres enforces it, Redshift keeps it as a hint.

A batch the database refuses for its data (SQLSTATE class 22, data exception, or 23,
integrity constraint) is loaded again one event at a time, so that one bad event goes
to dead letters alone instead of taking up to a batch of other users' events with it.
Errors of the connection, the server or the transaction are retried as usual.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from clickstream.config import Settings
from clickstream.destination_settings import InvalidSettings, WarehouseSettings, parse_settings
from clickstream.retry import DeliveryError
from clickstream.storage import Destination
from clickstream.workers.sink import RoutedEvent
from clickstream.workers.warehouse_schema import coerce, rows_for, sql_type

log = logging.getLogger(__name__)

# Stay well under Postgres's 65,535 bind parameters per statement.
MAX_PARAMETERS = 30000
#: SQLSTATE classes that say the rows themselves are wrong: retrying cannot help.
REFUSED_DATA = ("22", "23")


def _refuses_the_data(exc: psycopg.Error) -> bool:
    return (exc.sqlstate or "")[:2] in REFUSED_DATA


class WarehouseSink:
    def __init__(self, settings: Settings | None = None) -> None:
        self._local = threading.local()
        # (dsn, schema, table) -> {column: type}; shared by threads, guarded by the lock.
        self._columns: dict[tuple[str, str, str], dict[str, str]] = {}
        self._ddl_lock = threading.Lock()

    def _settings(self, destination: Destination) -> WarehouseSettings:
        return parse_settings("warehouse", destination.settings)

    def batch_size(self, destination: Destination) -> int:
        return self._settings(destination).batch_size

    def linger_seconds(self, destination: Destination) -> float:
        # Fewer, larger loads: a warehouse pays per statement, not per row.
        return self._settings(destination).flush_seconds

    def _connection(self, dsn: str) -> psycopg.Connection:
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        conn = connections.get(dsn)
        if conn is None or conn.closed:
            conn = connections[dsn] = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        return conn

    def deliver(self, destination: Destination, events: list[RoutedEvent]) -> None:
        try:
            settings = self._settings(destination)
        except InvalidSettings as exc:
            raise DeliveryError(f"invalid settings: {exc}", retryable=False) from None
        try:
            self._load_events(settings, events)
            return
        except psycopg.Error as exc:
            self._forget(settings)  # a failed DDL may have left the cache ahead of the DB
            if not _refuses_the_data(exc):
                raise DeliveryError(f"warehouse load failed: {exc}".strip()) from None
            if len(events) == 1:
                raise DeliveryError(f"warehouse refused the event: {exc}".strip(),
                                    retryable=False) from None
        rejected, reasons = [], []
        for position, routed in enumerate(events):  # find the events it refuses
            try:
                self._load_events(settings, [routed])
            except psycopg.Error as exc:
                self._forget(settings)
                if not _refuses_the_data(exc):
                    raise DeliveryError(f"warehouse load failed: {exc}".strip()) from None
                rejected.append(position)
                reasons.append(str(exc).strip())
        if rejected:
            raise DeliveryError(f"warehouse refused {len(rejected)} of {len(events)} "
                                f"events: {reasons[0]}", rejected=tuple(rejected))

    def _load_events(self, settings: WarehouseSettings, events: list[RoutedEvent]) -> None:
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        tables: dict[str, dict[str, dict[str, Any]]] = {}  # table -> id -> row
        for routed in events:
            for table, row in rows_for(routed.event, loaded_at).items():
                # First one wins within a batch, as across batches.
                tables.setdefault(table, {}).setdefault(row["id"], row)
        conn = self._connection(settings.dsn)
        # Tables and columns first, each change committed at once, so the load below
        # holds no DDL locks and a failed load leaves the schema consistent.
        columns = {table: self._ensure_columns(conn, settings, table, rows.values())
                   for table, rows in tables.items()}
        with conn.transaction():
            for number, (table, rows) in enumerate(tables.items()):
                self._load(conn, settings, table, columns[table], list(rows.values()),
                           f"stage_{number}")

    def _forget(self, settings: WarehouseSettings) -> None:
        with self._ddl_lock:
            for key in [k for k in self._columns if k[:2] == (settings.dsn, settings.schema)]:
                del self._columns[key]

    def _load(self, conn: psycopg.Connection, settings: WarehouseSettings, table: str,
              columns: dict[str, str], rows: list[dict[str, Any]], stage_name: str) -> None:
        target = sql.Identifier(settings.schema, table)
        stage = sql.Identifier(stage_name)
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {})").format(stage, target))
        names = sorted({name for row in rows for name in row})
        per_statement = max(1, MAX_PARAMETERS // len(names))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            placeholders = sql.SQL(", ").join(
                sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(names)))
                for _ in chunk)
            values = [coerce(row.get(name), columns[name]) for row in chunk for name in names]
            conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
                stage, sql.SQL(", ").join(map(sql.Identifier, names)), placeholders), values)
        conn.execute(sql.SQL(
            "INSERT INTO {target} SELECT s.* FROM {stage} s"
            " WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE t.id = s.id)"
        ).format(target=target, stage=stage))
        conn.execute(sql.SQL("DROP TABLE {}").format(stage))

    def _ensure_columns(self, conn: psycopg.Connection, settings: WarehouseSettings,
                        table: str, rows: Iterable[dict[str, Any]]) -> dict[str, str]:
        key = (settings.dsn, settings.schema, table)
        with self._ddl_lock:
            known = self._columns.get(key)
            if known is None:
                known = self._columns[key] = self._existing_columns(conn, settings.schema,
                                                                    table)
            wanted: dict[str, str] = {}
            for row in rows:
                for name, value in row.items():
                    if name not in known and name not in wanted:
                        wanted[name] = sql_type(name, value)
            if not wanted:
                return dict(known)
            target = sql.Identifier(settings.schema, table)
            if not known:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(settings.schema)))
                wanted.setdefault("id", "VARCHAR(512)")
                definitions = sql.SQL(", ").join(
                    sql.SQL("{} {}{}").format(sql.Identifier(name), sql.SQL(kind),
                                              sql.SQL(" PRIMARY KEY" if name == "id" else ""))
                    for name, kind in sorted(wanted.items()))
                conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                    target, definitions))
                log.info("warehouse table ready", extra={"schema": settings.schema,
                                                         "table": table})
                # Another worker may have created it first, with other columns.
                known.update(self._existing_columns(conn, settings.schema, table))
            added = sorted(name for name in wanted if name not in known)
            for name in added:
                # One column per statement: Redshift's ALTER TABLE takes no more.
                conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    target, sql.Identifier(name), sql.SQL(wanted[name])))
            if added:
                log.info("warehouse columns added",
                         extra={"schema": settings.schema, "table": table, "columns": added})
            known.clear()
            known.update(self._existing_columns(conn, settings.schema, table))
            return dict(known)

    @staticmethod
    def _existing_columns(conn: psycopg.Connection, schema: str, table: str) -> dict[str, str]:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s", (schema, table)).fetchall()
        return {name: kind for name, kind in rows}
