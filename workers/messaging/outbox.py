"""The transactional outbox: events are written with the state change that caused them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select, update

from workers.messaging import tracing
from workers.messaging.envelope import Envelope, as_utc, utcnow
from workers.messaging.subscriptions import subscribers_of
from workers.messaging.tables import outbox

# The components that emit events, each with an outbox in its own database (operations: the
# message.parked events parking writes, see deadletters).
EMITTING_COMPONENTS = ("shop", "orders", "payments", "shipping", "operations")


@dataclass
class Outbox:
    """Collects the events a unit of work emits, in the unit of work's own transaction."""

    conn: Connection
    emitted: list[Envelope] = field(default_factory=list)
    # Done once the transaction has committed, never if it rolls back (unit_of_work.apply_once):
    # notices outside the database that nobody must hear about a change that did not happen.
    committed_effects: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run ``effect`` after the commit, best effort: an exception it raises is logged, the
        change stays committed and the event stays handled."""
        self.committed_effects.append(effect)

    def emit(self, event: Envelope) -> Envelope:
        """Write ``event`` to the outbox in this transaction; returns it as written: with the
        context of its ``create`` span as its traceparent when tracing is on and it had none
        (workers.messaging.tracing.stamped). Raises UnknownEventType for a type nobody
        subscribes to."""
        # Fail now, inside the transaction, rather than after commit when nobody hears it.
        subscribers_of(event.type)
        event = tracing.stamped(event)
        # Values as execute() parameters, never .values(...): one statement compiled once, instead
        # of a new statement with its own bound literals built and cache-keyed for every row
        # (the same habit in every hot statement of the project).
        self.conn.execute(
            insert(outbox),
            {
                "id": event.id,
                "type": event.type,
                "subject": event.subject,
                "event": event.to_dict(),
                "created_at": utcnow(),
            },
        )
        self.emitted.append(event)
        return event


def unpublished(conn: Connection, *, limit: int, older_than: timedelta) -> list[Envelope]:
    """The oldest events not yet published, leaving the newest to the publisher that wrote them."""
    cutoff: datetime = utcnow() - older_than
    query = (
        select(outbox.c.event)
        .where(outbox.c.published_at.is_(None), outbox.c.created_at <= cutoff)
        .order_by(outbox.c.seq)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        # Several relays may run: each takes rows nobody else holds.
        query = query.with_for_update(skip_locked=True)
    return [Envelope.from_dict(row.event) for row in conn.execute(query)]


_MARK_PUBLISHED = update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True)))


def mark_published(conn: Connection, event_ids: Sequence[str]) -> None:
    if not event_ids:
        return
    conn.execute(_MARK_PUBLISHED, {"ids": list(event_ids), "published_at": utcnow()})


def backlog(conn: Connection) -> int:
    from sqlalchemy import func

    query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
    return int(conn.execute(query).scalar_one())


def oldest_unpublished_age(conn: Connection) -> float:
    """Seconds since the oldest unpublished event was written; 0.0 when everything is out."""
    from sqlalchemy import func

    query = select(func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
    oldest: datetime | None = conn.execute(query).scalar_one()
    if oldest is None:
        return 0.0
    return max(0.0, (utcnow() - as_utc(oldest)).total_seconds())
