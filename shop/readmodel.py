"""The shop's view of each order, kept current by the events it hears, and stock that follows it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shop.tables import orders, stock, timeline
from workers.messaging.envelope import Envelope, utcnow

# A status only moves forward; SHIPPED and CANCELLED are final. An older status arriving late
# (a retried event overtaken by a newer one) is ignored.
RANK = {"PLACED": 0, "PAYMENT_PENDING": 1, "PAID": 2, "SHIPPED": 3, "CANCELLED": 3}
FINAL = {"SHIPPED", "CANCELLED"}
PAYMENT_STATUS = {
    "PLACED": "pending",
    "PAYMENT_PENDING": "pending",
    "PAID": "succeeded",
    "SHIPPED": "succeeded",
}


def record_in_timeline(conn: Connection, event: Envelope) -> None:
    values = {
        "event_id": event.id,
        "order_id": event.subject,
        "type": event.type,
        "source": event.source,
        "time": event.occurred_at,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(timeline).values(**values).on_conflict_do_nothing())


def apply_status(conn: Connection, order_id: str, status: str, reason: str | None) -> bool:
    """Move the order to ``status`` if that is forward; move its stock when it ends."""
    # orders.c["items"], not .items: the column collection has an items() method of its own.
    query = select(orders.c.status, orders.c["items"], orders.c.stock_state)
    row = conn.execute(query.where(orders.c.id == order_id)).mappings().first()
    if row is None or row["status"] in FINAL or RANK[status] <= RANK[row["status"]]:
        return False
    changes: dict[str, Any] = {"status": status, "reason": reason, "updated_at": utcnow()}
    if status in FINAL and row["stock_state"] == "reserved":
        _settle_stock(conn, row["items"], sold=status == "SHIPPED")
        changes["stock_state"] = "sold" if status == "SHIPPED" else "released"
    conn.execute(update(orders).where(orders.c.id == order_id).values(**changes))
    return True


def apply_dispatch(conn: Connection, order_id: str, carrier: str, tracking_number: str) -> None:
    conn.execute(
        update(orders)
        .where(orders.c.id == order_id)
        .values(carrier=carrier, tracking_number=tracking_number, updated_at=utcnow())
    )


def _settle_stock(conn: Connection, items: list[dict[str, Any]], *, sold: bool) -> None:
    for item in items:
        quantity = int(item["quantity"])
        moved_to = stock.c.sold if sold else stock.c.available
        conn.execute(
            update(stock)
            .where(stock.c.sku == item["sku"], stock.c.size == item["size"])
            .values({stock.c.reserved: stock.c.reserved - quantity, moved_to: moved_to + quantity})
        )


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here was written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def order_view(conn: Connection, order_id: str) -> dict[str, Any] | None:
    """The order as the API and the tracking page show it."""
    row = conn.execute(select(orders).where(orders.c.id == order_id)).mappings().first()
    if row is None:
        return None
    events = conn.execute(
        select(timeline.c.type, timeline.c.source, timeline.c.time)
        .where(timeline.c.order_id == order_id)
        .order_by(timeline.c.time)
    )
    reason = row["reason"]
    payment_status = PAYMENT_STATUS.get(
        row["status"], "declined" if reason == "payment_declined" else "cancelled"
    )
    return {
        "id": row["id"],
        "status": row["status"],
        "reason": reason,
        "items": row["items"],
        "total_cents": row["total_cents"],
        "currency": row["currency"],
        "customer": {"name": row["customer"]["name"]},
        "payment": {
            "status": payment_status,
            "brand": row["card_brand"],
            "last4": row["card_last4"],
        },
        "shipment": (
            {"carrier": row["carrier"], "tracking_number": row["tracking_number"]}
            if row["tracking_number"]
            else None
        ),
        "timeline": [
            {"type": event.type, "source": event.source, "time": as_utc(event.time).isoformat()}
            for event in events
        ],
    }
