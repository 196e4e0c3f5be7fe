"""The event store: each order is an append-only stream, guarded by its version."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from workers.messaging.envelope import Envelope
from workers.messaging.erasure import erase_data
from workers.messaging.errors import TransientError
from workers.messaging.tables import erased_orders_table
from workers.orders.events import DomainEvent, from_record, to_record

metadata = MetaData()

# Orders whose customer.erased came here: data about them that arrives later is kept erased.
erased_orders = erased_orders_table(metadata)

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


class ConcurrencyConflict(TransientError):
    """Another writer appended to the stream first; retrying re-reads it and decides again."""


_LOAD = (
    select(order_events.c.type, order_events.c.data)
    .where(order_events.c.stream_id == bindparam("stream_id"))
    .order_by(order_events.c.version)
)


def load(conn: Connection, stream_id: str) -> list[DomainEvent]:
    return [
        from_record(row.type, row.data) for row in conn.execute(_LOAD, {"stream_id": stream_id})
    ]


def append(
    conn: Connection,
    stream_id: str,
    expected_version: int,
    events: Sequence[DomainEvent],
    cause: Envelope,
    now: datetime,
) -> None:
    """Append after ``expected_version``; raise ConcurrencyConflict if someone got there first."""
    if not events:
        return
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


_PLACED_OF = select(order_events.c.stream_id, order_events.c.version, order_events.c.data).where(
    order_events.c.stream_id.in_(bindparam("ids", expanding=True)),
    order_events.c.type == "OrderPlaced",
)
_STREAMS_OF = (
    select(order_events.c.stream_id)
    .where(order_events.c.stream_id.in_(bindparam("ids", expanding=True)))
    .distinct()
)
_REWRITE = update(order_events).where(
    order_events.c.stream_id == bindparam("stream"), order_events.c.version == bindparam("at")
)


def unknown_streams(conn: Connection, order_ids: Sequence[str]) -> list[str]:
    """The orders of ``order_ids`` that have no stream here yet."""
    found = set(conn.execute(_STREAMS_OF, {"ids": list(order_ids)}).scalars())
    return [order_id for order_id in order_ids if order_id not in found]


def erase_personal_data(conn: Connection, order_ids: Sequence[str]) -> None:
    """Overwrite the customer and the address in each stream's OrderPlaced (erasure.erase_data:
    values the fold still reads); the order's facts (items, amounts, later events) stay."""
    for row in conn.execute(_PLACED_OF, {"ids": list(order_ids)}).all():
        conn.execute(
            _REWRITE, {"stream": row.stream_id, "at": row.version, "data": erase_data(row.data)}
        )


deadlines = Table(
    "deadlines",
    metadata,
    # The deadline of the order's current status (PAYMENT_PENDING: its payment; PAID: its parcel
    # leaving), one per order while it is in such a status. Durable: the timer lives in the
    # database, so it survives any restart of any worker or of beat.
    Column("order_id", String(36), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
    # The trace context of the deadline (workers.messaging.tracing.scheduled: a span inside the
    # processing of the event that set it), which the timer's order.deadline_passed carries.
    # NULL while tracing is off and for deadlines set before it (migration 0006).
    Column("traceparent", String(55), nullable=True),
)


_CLEAR_DEADLINE = delete(deadlines).where(deadlines.c.order_id == bindparam("order_id"))


def set_deadline(
    conn: Connection,
    order_id: str,
    status: str,
    due_at: datetime,
    traceparent: str | None = None,
) -> None:
    """The order is due to leave ``status`` by ``due_at`` (replaces the deadline it had);
    ``traceparent`` is the trace context the timer continues when it passes."""
    conn.execute(_CLEAR_DEADLINE, {"order_id": order_id})
    conn.execute(
        insert(deadlines),
        {"order_id": order_id, "status": status, "due_at": due_at, "traceparent": traceparent},
    )


def clear_deadline(conn: Connection, order_id: str) -> None:
    conn.execute(_CLEAR_DEADLINE, {"order_id": order_id})


def due_deadlines(conn: Connection, now: datetime, limit: int = 500) -> list[tuple[str, str]]:
    """``(order id, traceparent or "")`` of each order whose deadline is ``now`` or earlier, the
    most overdue first (``deadlines.due_at`` is indexed)."""
    query = (
        select(deadlines.c.order_id, deadlines.c.traceparent)
        .where(deadlines.c.due_at <= now)
        .order_by(deadlines.c.due_at)
        .limit(limit)
    )
    return [(row.order_id, row.traceparent or "") for row in conn.execute(query)]


def due_orders(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    """Orders whose deadline is ``now`` or earlier, the most overdue first (``deadlines.due_at``
    is indexed)."""
    query = (
        select(deadlines.c.order_id)
        .where(deadlines.c.due_at <= now)
        .order_by(deadlines.c.due_at)
        .limit(limit)
    )
    return [row.order_id for row in conn.execute(query)]


def all_streams(conn: Connection) -> Iterator[tuple[str, list[tuple[DomainEvent, datetime]]]]:
    """Every stream with its events and their record times, for rebuilding projections."""
    query = select(
        order_events.c.stream_id,
        order_events.c.type,
        order_events.c.data,
        order_events.c.recorded_at,
    ).order_by(order_events.c.stream_id, order_events.c.version)
    current: str | None = None
    events: list[tuple[DomainEvent, datetime]] = []
    for row in conn.execute(query):
        if row.stream_id != current:
            if current is not None:
                yield current, events
            current, events = row.stream_id, []
        events.append((from_record(row.type, row.data), row.recorded_at))
    if current is not None:
        yield current, events
