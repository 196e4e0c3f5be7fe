"""One order's whole saga, joined by its id across the outboxes and inboxes of every component.

It reads only the kit's own tables in each component's database: what each component emitted
(outbox) and which of its tasks applied what, on which attempt (inbox). It is the kit's one
join across every component's database, left here only because the shop's order view
(shop.readmodel.order_view: the tracking page, GET /api/orders/<id>) shows this timeline and
the shop may not import the operations component. A projection of the shop's own is to replace
it; the operators' reads of every component's tables live in workers.operations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from workers.messaging.database import engine_for
from workers.messaging.envelope import as_utc
from workers.messaging.outbox import EMITTING_COMPONENTS
from workers.messaging.tables import inbox, outbox


def timeline(order_id: str) -> list[dict[str, Any]]:
    """Every event of the order's saga in time order, with who emitted it and who applied it.

    Each entry: ``{"id", "type", "source", "component", "time"`` (ISO 8601, UTC),
    ``"since_placed_s"`` (seconds after the first event, to the millisecond), ``"consumers":
    [{"task", "attempts", "retries", "applied_at"}]}``; empty for an unknown order. Raises
    sqlalchemy.exc.SQLAlchemyError when a component's database is away.
    """
    emitted: list[dict[str, Any]] = []
    for component in EMITTING_COMPONENTS:
        emitted.extend(_emitted_by(component, order_id))
    emitted.sort(key=lambda entry: entry["time"])
    consumers = _applied(event["id"] for event in emitted)
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


def _emitted_by(component: str, order_id: str) -> list[dict[str, Any]]:
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


def _applied(event_ids: Any) -> dict[str, list[dict[str, Any]]]:
    ids = list(event_ids)
    found: dict[str, list[dict[str, Any]]] = {}
    if not ids:
        return found
    query = select(inbox.c.event_id, inbox.c.consumer, inbox.c.attempts, inbox.c.processed_at)
    for component in EMITTING_COMPONENTS:
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
    return found
