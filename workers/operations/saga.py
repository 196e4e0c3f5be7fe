"""The operators' saga view: one order's rows, joined by its id, in every component's kit tables.

It reads only the kit's own tables in each component's database: what each component emitted
(outbox) and which of its tasks applied what, on which attempt (inbox). Operations is the one
component that may read them all; the admin blueprint shows this view at
``/admin/orders/<order id>`` and ``/api/admin/orders/<order id>/saga``. The shop answers its
customers from its own read model, never from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict

from sqlalchemy import select

from config.settings import COMPONENTS
from workers.messaging.database import engine_for
from workers.messaging.envelope import UUID_PATTERN, as_utc
from workers.messaging.outbox import EMITTING_COMPONENTS
from workers.messaging.tables import inbox, outbox

__all__ = ["Consumer", "SagaEvent", "is_order_id", "timeline"]

_ORDER_ID = re.compile(UUID_PATTERN)


class Consumer(TypedDict):
    """A task that applied the event: ``attempts`` is the delivery that did (1 = first try)."""

    task: str
    attempts: int
    retries: int
    applied_at: str


class SagaEvent(TypedDict):
    """One event of the saga, with who emitted it and which tasks applied it."""

    id: str
    type: str
    source: str
    component: str
    time: str
    since_placed_s: float
    consumers: list[Consumer]


class _Emitted(TypedDict):
    id: str
    type: str
    source: str
    component: str
    time: datetime


def is_order_id(text: str) -> bool:
    """Whether ``text`` is an order's id as the shop writes them: a lower-case UUID."""
    return _ORDER_ID.fullmatch(text) is not None


def timeline(order_id: str) -> list[SagaEvent]:
    """Every event of the order's saga in time order, with who emitted it and who applied it.

    Each entry: ``{"id", "type", "source", "component", "time"`` (ISO 8601, UTC),
    ``"since_placed_s"`` (seconds after the first event, to the millisecond), ``"consumers":
    [{"task", "attempts", "retries", "applied_at"}]}`` (``applied_at`` ISO 8601, UTC); empty for
    an order no component has an outbox row about. Raises sqlalchemy.exc.SQLAlchemyError when a
    component's database is away.
    """
    emitted: list[_Emitted] = []
    for component in EMITTING_COMPONENTS:
        emitted.extend(_emitted_by(component, order_id))
    emitted.sort(key=lambda entry: entry["time"])
    consumers = _applied(entry["id"] for entry in emitted)
    start = emitted[0]["time"] if emitted else None
    return [
        {
            "id": entry["id"],
            "type": entry["type"],
            "source": entry["source"],
            "component": entry["component"],
            "time": entry["time"].isoformat(),
            "since_placed_s": round((entry["time"] - start).total_seconds(), 3) if start else 0.0,
            "consumers": consumers.get(entry["id"], []),
        }
        for entry in emitted
    ]


def _emitted_by(component: str, order_id: str) -> list[_Emitted]:
    query = select(outbox.c.id, outbox.c.event).where(outbox.c.subject == order_id)
    with engine_for(component).connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "id": row.id,
            "type": row.event["type"],
            "source": row.event["source"],
            "component": component,
            "time": as_utc(datetime.fromisoformat(row.event["time"])),
        }
        for row in rows
    ]


def _applied(event_ids: Iterable[str]) -> dict[str, list[Consumer]]:
    ids = list(event_ids)
    found: dict[str, list[Consumer]] = {}
    if not ids:
        return found
    query = select(inbox.c.event_id, inbox.c.consumer, inbox.c.attempts, inbox.c.processed_at)
    # Every component's inbox: notifications applies events and emits none.
    for component in COMPONENTS:
        with engine_for(component).connect() as conn:
            for row in conn.execute(query.where(inbox.c.event_id.in_(ids))):
                found.setdefault(row.event_id, []).append(
                    {
                        "task": row.consumer,
                        "attempts": row.attempts,
                        "retries": row.attempts - 1,
                        "applied_at": as_utc(row.processed_at).isoformat(),
                    }
                )
    for applied in found.values():
        applied.sort(key=lambda consumer: consumer["applied_at"])
    return found
