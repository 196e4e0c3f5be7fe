"""The event store: each order is an append-only stream, guarded by its version."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from workers.messaging import database
from workers.messaging.envelope import Envelope, utcnow
from workers.messaging.errors import TransientError
from workers.orders.domain import DomainEvent, from_record, to_record

metadata = MetaData()

order_events = Table(
    "order_events",
    metadata,
    # (stream, version) is the optimistic lock: two writers cannot both append version N.
    Column("stream_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("type", String(50), nullable=False),
    Column("data", JSON, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("causation_id", String(36), nullable=False),
    Column("correlation_id", String(36), nullable=False),
)

database.register("orders", metadata)


class ConcurrencyConflict(TransientError):
    """Another writer appended to the stream first; retrying re-reads it and decides again."""


def load(conn: Connection, stream_id: str) -> list[DomainEvent]:
    query = (
        select(order_events.c.type, order_events.c.data)
        .where(order_events.c.stream_id == stream_id)
        .order_by(order_events.c.version)
    )
    return [from_record(row.type, row.data) for row in conn.execute(query)]


def append(
    conn: Connection,
    stream_id: str,
    expected_version: int,
    events: Sequence[DomainEvent],
    cause: Envelope,
) -> None:
    """Append after ``expected_version``; raise ConcurrencyConflict if someone got there first."""
    if not events:
        return
    now = utcnow()
    rows = []
    for offset, event in enumerate(events, start=1):
        name, data = to_record(event)
        rows.append(
            {
                "stream_id": stream_id,
                "version": expected_version + offset,
                "event_id": str(uuid.uuid4()),
                "type": name,
                "data": data,
                "recorded_at": now,
                "causation_id": cause.id,
                "correlation_id": cause.correlationid or stream_id,
            }
        )
    try:
        conn.execute(insert(order_events), rows)
    except IntegrityError as exc:
        raise ConcurrencyConflict(
            f"stream {stream_id} moved past version {expected_version}"
        ) from exc
