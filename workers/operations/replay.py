"""Replay: catching a subscriber up on history, the stored events it subscribes to re-sent in
order. The history is every emitting component's outbox, read here (``shoeshop replay --to``)."""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery
from sqlalchemy import select

from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.outbox import EMITTING_COMPONENTS
from workers.messaging.publisher import send_to, task_id_for
from workers.messaging.subscriptions import recipients, types_heard_by
from workers.messaging.tables import outbox


def history_for(task_name: str, components: Iterable[str] = EMITTING_COMPONENTS) -> list[Envelope]:
    """Every stored event of the types ``task_name`` subscribes to that it wants (an Interest
    may narrow a type: ``subscriptions.recipients``), oldest first.

    Each component keeps what it emitted in its outbox for SHOESHOP_OUTBOX_RETENTION after it
    was published (then the relay prunes it: operations.retention), so the outboxes together
    are the log of every event that crossed the broker within that window. Events
    come back as they were written, older versions included; the task upcasts them on receipt.
    Raises ValueError when the task subscribes to nothing, sqlalchemy.exc.SQLAlchemyError when
    a database is away.
    """
    types = types_heard_by(task_name)
    if not types:
        raise ValueError(f"{task_name!r} subscribes to no event; see the subscription table")
    found: list[tuple[str, int, Envelope]] = []
    query = select(outbox.c.seq, outbox.c.event).where(outbox.c.type.in_(types))
    for component in components:
        with engine_for(component).connect() as conn:
            for row in conn.execute(query):
                event = Envelope.from_dict(row.event)
                if task_name in recipients(event):
                    found.append((event.time, row.seq, event))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [event for _time, _seq, event in found]


def replay_to(app: Celery, task_name: str) -> int:
    """Send the history to one subscriber only, each event with the task id of its first
    delivery; its inbox skips what it has already applied. Returns how many events were sent;
    raises as ``history_for``, and what kombu raises when the broker is away."""
    events = history_for(task_name)
    with app.producer_or_acquire() as producer:
        for event in events:
            send_to(
                app,
                task_name,
                event.to_dict(),
                task_id=task_id_for(event, task_name),
                producer=producer,
            )
    return len(events)
