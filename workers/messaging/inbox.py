"""The idempotent inbox: which events each consumer has already applied."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select

from workers.messaging.database import upsert_insert
from workers.messaging.envelope import utcnow
from workers.messaging.tables import inbox


def claim(conn: Connection, event_id: str, consumer: str, attempts: int = 1) -> bool:
    """Record the event as processed by this consumer; False if it already was.

    Runs in the same transaction as the effect, so either both are committed or neither.
    A concurrent duplicate blocks on the primary key and then finds the row taken.
    """
    values = {
        "event_id": event_id,
        "consumer": consumer,
        "processed_at": utcnow(),
        "attempts": attempts,
    }
    stmt = upsert_insert(conn, inbox).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
    return conn.execute(stmt.returning(inbox.c.event_id), values).first() is not None


def seen(engine: Engine, event_id: str, consumer: str) -> bool:
    """A cheap look before doing slow work (a gateway call) for an event already applied."""
    query = select(inbox.c.event_id).where(
        inbox.c.event_id == event_id, inbox.c.consumer == consumer
    )
    with engine.connect() as conn:
        return conn.execute(query).first() is not None
