"""Putting a shop that release 0.1.0 left behind (tests/upgrade/v0_1_0) back on a stack.

The fixture was built on SQLite. For the RabbitMQ + PostgreSQL stack its rows are copied into a
fresh PostgreSQL database at revision 0001 (release 0.1.0's schema, see workers/schema), and the
messages that waited on 0.1.0's RabbitMQ are published again, byte for byte, into a fresh vhost.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import amqp
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.pool import NullPool

from config.settings import Settings, get_settings
from tests.upgrade.v0_1_0.common import COMPONENTS as RELEASED
from workers.messaging import database
from workers.schema import migrate


def sqlite_into_postgres(data_dir: Path, database_url: str) -> dict[str, int]:
    """Make in PostgreSQL what release 0.1.0 made there (each component's schema and its tables
    by ``create_all``, no version table), then copy into it every row of the component's SQLite
    file under ``data_dir``. Returns the rows copied per component.

    What an operator moving a 0.1.0 shop from SQLite to PostgreSQL would do: naive SQLite times
    are UTC, and each serial column's sequence is moved past the ids copied, or the next insert
    would collide with a copied row.
    """
    copied = {}
    for component in RELEASED:
        source = create_engine(f"sqlite:///{data_dir / f'{component}.db'}", poolclass=NullPool)
        target = database.open_unchecked(component, _postgres_settings(database_url))
        try:
            with database.begin_write(target) as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{component}"'))
                release_0_1_0_tables(component).create_all(conn)
            copied[component] = _copy_rows(source, target)
        finally:
            source.dispose()
            target.dispose()
    return copied


def release_0_1_0_tables(component: str) -> MetaData:
    """The component's tables as release 0.1.0 declared them: its first revision's, frozen."""
    first = ScriptDirectory.from_config(migrate.history_config(component)).get_revision("0001")
    assert first is not None
    tables: MetaData = first.module.metadata
    return tables


def _postgres_settings(database_url: str) -> Settings:
    return dataclasses.replace(get_settings(), database_url=database_url)


def _copy_rows(source: Engine, target: Engine) -> int:
    tables = MetaData()
    tables.reflect(source)
    count = 0
    with source.connect() as reading, database.begin_write(target) as writing:
        for table in tables.sorted_tables:
            rows = [_as_utc(dict(row)) for row in reading.execute(select(table)).mappings()]
            if rows:
                writing.execute(insert(table), rows)
                count += len(rows)
            if rows:
                _move_sequences_past(writing, table)
    return count


def _move_sequences_past(conn: Connection, table: Table) -> None:
    # Raw SQL is not reached by the engine's schema_translate_map: the component's schema is
    # named here (workers.messaging.database chooses no search_path).
    schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
    name = f'"{schema}"."{table.name}"' if schema else f'"{table.name}"'
    for column in table.primary_key.columns:
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": name, "column": column.name},
        ).scalar()
        if sequence is not None:
            highest = f'SELECT max("{column.name}") FROM {name}'
            conn.execute(text(f"SELECT setval(:sequence, ({highest}))"), {"sequence": sequence})


def _as_utc(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.replace(tzinfo=UTC)
        if isinstance(value, datetime) and value.tzinfo is None
        else value
        for key, value in row.items()
    }


def republish(fixture: Path, broker_url: str) -> int:
    """Declare 0.1.0's exchanges, queues and bindings (``queues.json``) in the vhost of
    ``broker_url`` and publish ``messages.json`` again with their properties and headers, with
    publisher confirms. Returns the number of messages published.

    Raises AssertionError when a body is not the one recorded (its SHA-256 differs).
    """
    topology = json.loads((fixture / "queues.json").read_text())["shoeshop"]
    messages = json.loads((fixture / "messages.json").read_text())
    url = urlparse(broker_url)
    connection = amqp.Connection(
        host=f"{url.hostname}:{url.port or 5672}",
        userid=unquote(url.username or "guest"),
        password=unquote(url.password or "guest"),
        virtual_host=unquote(url.path[1:]) or "/",
    )
    connection.connect()
    try:
        channel = connection.channel()
        channel.confirm_select()
        for exchange in topology["exchanges"]:
            channel.exchange_declare(
                exchange["name"], exchange["type"], durable=exchange["durable"], auto_delete=False
            )
        for queue in topology["queues"]:
            channel.queue_declare(
                queue["name"],
                durable=queue["durable"],
                auto_delete=False,
                arguments=queue["arguments"],
            )
        for binding in topology["bindings"]:
            channel.queue_bind(
                binding["destination_name"], binding["source_name"], binding["routing_key"]
            )
        for message in messages:
            channel.basic_publish(
                amqp.Message(
                    _body(message), application_headers=message["headers"], **message["properties"]
                ),
                exchange=message["exchange"],
                routing_key=message["routing_key"],
            )
    finally:
        connection.close()
    return len(messages)


def _body(message: dict[str, Any]) -> bytes:
    body: str = message["body"]
    raw = base64.b64decode(body) if message["body_is_base64"] else body.encode("utf-8")
    if hashlib.sha256(raw).hexdigest() != message["body_sha256"]:
        raise AssertionError("a recorded message body is not the one 0.1.0 sent")
    return raw
