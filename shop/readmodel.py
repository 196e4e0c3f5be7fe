"""The order-status projection: the shop's view of each order, folded from the events it heard.

The live path and ``rebuild`` run the same ``apply``; only the live path moves stock, because
stock is state (pairs on a shelf), not a view that can be recomputed.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from shop.tables import heard_events, orders, stock
from workers.messaging import saga
from workers.messaging.database import upsert_insert
from workers.messaging.envelope import Envelope, as_utc
from workers.messaging.versions import upcast

# A status only moves forward; SHIPPED and CANCELLED are final. An older status arriving late
# (a retried event overtaken by a newer one) is ignored.
RANK = {"PLACED": 0, "PAYMENT_PENDING": 1, "PAID": 2, "SHIPPED": 3, "CANCELLED": 3}
FINAL = {"SHIPPED", "CANCELLED"}
PAYMENT_STATUS = {"PLACED": "pending", "PAYMENT_PENDING": "pending", "PAID": "succeeded"}


def remember(conn: Connection, event: Envelope) -> None:
    """Append to the shop's event log; the sealed card token is not kept, it is not needed."""
    body = copy.deepcopy(event.to_dict())
    body["data"].get("payment", {}).pop("token", None)
    conn.execute(
        upsert_insert(conn, heard_events).on_conflict_do_nothing(),
        {"event_id": event.id, "order_id": event.subject, "type": event.type, "event": body},
    )


def apply(conn: Connection, event: Envelope, *, live: bool) -> None:
    """Fold one event into the view (and, live, into the stock)."""
    data, at = event.data, as_utc(event.occurred_at)
    match event.name:
        case "order.placed":
            _insert_view(conn, data, at)
        case "order.status_changed":
            _apply_status(conn, data["order_id"], data["status"], data.get("reason"), at, live)
            if isinstance(data.get("shipment"), dict):
                _update(conn, data["order_id"], at, **_parcel(data["shipment"]))
        case "shipment.dispatched":  # heard before status changes carried the parcel
            _update(conn, data["order_id"], at, **_parcel(data))
        case "order.cancellation_requested":
            _update(conn, data["order_id"], at, cancel_requested_at=at)


def _parcel(data: dict[str, Any]) -> dict[str, Any]:
    return {"carrier": data["carrier"], "tracking_number": data["tracking_number"]}


def rebuild(conn: Connection) -> int:
    """Drop the view and fold the whole log into it again; returns the events replayed."""
    conn.execute(delete(orders))
    replayed = 0
    for row in conn.execute(select(heard_events.c.event).order_by(heard_events.c.seq)):
        # The log keeps each event in the version it was heard in; apply reads the current one.
        apply(conn, upcast(Envelope.from_dict(row.event)), live=False)
        replayed += 1
    return replayed


def snapshot(conn: Connection) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.execute(select(orders).order_by(orders.c.id))]


# orders.c["items"], not .items: the column collection has an items() method of its own.
# FOR UPDATE: two of the shop worker's threads may apply PAID and SHIPPED a few ms apart; the row
# lock makes the second wait for the first, so a status never moves backwards. (SQLite has no
# row locks; its write transactions are serialised whole.)
_STATUS_FOR_UPDATE = (
    select(orders.c.status, orders.c["items"], orders.c.stock_state)
    .where(orders.c.id == bindparam("order_id"))
    .with_for_update()
)
# The columns named in the parameters are the ones SET; "key" is not a column.
_UPDATE = update(orders).where(orders.c.id == bindparam("key"))


def _insert_view(conn: Connection, data: dict[str, Any], at: datetime) -> None:
    conn.execute(
        insert(orders),
        {
            "id": data["order_id"],
            "status": "PLACED",
            "reason": None,
            "customer": data["customer"],
            "shipping_address": data["shipping_address"],
            "items": data["items"],
            "total_cents": data["total_cents"],
            "currency": data["currency"],
            "card_brand": data["payment"]["brand"],
            "card_last4": data["payment"]["last4"],
            "stock_state": "reserved",
            "created_at": at,
            "updated_at": at,
        },
    )


def _apply_status(
    conn: Connection, order_id: str, status: str, reason: str | None, at: datetime, live: bool
) -> None:
    row = conn.execute(_STATUS_FOR_UPDATE, {"order_id": order_id}).mappings().first()
    if row is None or row["status"] in FINAL or RANK[status] <= RANK[row["status"]]:
        return
    changes: dict[str, Any] = {"status": status, "reason": reason}
    if status in FINAL and row["stock_state"] == "reserved":
        if live:
            _settle_stock(conn, row["items"], sold=status == "SHIPPED")
        changes["stock_state"] = "sold" if status == "SHIPPED" else "released"
    _update(conn, order_id, at, **changes)


def _update(conn: Connection, order_id: str, at: datetime, **changes: Any) -> None:
    conn.execute(_UPDATE, {"key": order_id, "updated_at": at, **changes})


def _settle_stock(conn: Connection, items: list[dict[str, Any]], *, sold: bool) -> None:
    for item in items:
        quantity = int(item["quantity"])
        moved_to = stock.c.sold if sold else stock.c.available
        conn.execute(
            update(stock)
            .where(stock.c.sku == item["sku"], stock.c.size == item["size"])
            .values({stock.c.reserved: stock.c.reserved - quantity, moved_to: moved_to + quantity})
        )


def order_view(conn: Connection, order_id: str) -> dict[str, Any] | None:
    """The order as the API and the tracking page show it, with its whole saga."""
    row = conn.execute(select(orders).where(orders.c.id == order_id)).mappings().first()
    if row is None:
        return None
    status, reason = row["status"], row["reason"]
    payment_status = PAYMENT_STATUS.get(status, "succeeded")
    if status == "CANCELLED":
        payment_status = "declined" if reason == "payment_declined" else "cancelled"
    return {
        "id": row["id"],
        "status": status,
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
        "cancellable": status not in FINAL and row["cancel_requested_at"] is None,
        "cancel_requested": row["cancel_requested_at"] is not None,
        "timeline": saga.timeline(order_id),
    }
