"""What the orders component does with each event it hears: decide, append, announce."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from workers.messaging.envelope import Envelope, require
from workers.messaging.errors import InvalidEvent
from workers.messaging.outbox import Outbox
from workers.orders import domain, store
from workers.orders.domain import DomainEvent, Item, Order

SOURCE = "/orders"

Decision = Callable[[Order | None], list[DomainEvent]]


def on_order_placed(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    placed = _parse_placed(event.data)
    payment_id = str(uuid.uuid4())
    token = str(event.data["payment"]["token"])
    _decide(
        conn,
        event,
        outbox,
        placed.order_id,
        lambda order: domain.place(order, placed, payment_id),
        token,
    )


def on_payment_succeeded(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    require(event.data, "order_id", "payment_id", "charge_id")
    data = event.data
    _decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_payment(order, data["payment_id"], data["charge_id"]),
    )


def on_payment_declined(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    require(event.data, "order_id", "payment_id", "reason")
    data = event.data
    _decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_decline(order, data["payment_id"], data["reason"]),
    )


def on_shipment_dispatched(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    require(event.data, "order_id", "shipment_id", "carrier", "tracking_number")
    data = event.data
    _decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_dispatch(
            order, data["shipment_id"], data["carrier"], data["tracking_number"]
        ),
    )


def _decide(
    conn: Connection,
    cause: Envelope,
    outbox: Outbox,
    order_id: str,
    decision: Decision,
    token: str | None = None,
) -> None:
    """Load the stream, let the domain decide, append its events and announce the outcome."""
    history = store.load(conn, order_id)
    before = domain.fold(history)
    new_events = decision(before)
    if not new_events:
        return  # stale or duplicate: the stream already says what this event would
    store.append(conn, order_id, len(history), new_events, cause)
    after = domain.fold([*history, *new_events])
    assert after is not None
    for name, data in _announcements(before, after, new_events, token):
        outbox.emit(cause.caused(name, SOURCE, data))


def _announcements(
    before: Order | None, after: Order, new_events: list[DomainEvent], token: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """The integration events that tell other components what just happened."""
    out: list[tuple[str, dict[str, Any]]] = []
    for event in new_events:
        if isinstance(event, domain.PaymentRequested):
            out.append(
                (
                    "payment.requested",
                    {
                        "order_id": after.order_id,
                        "payment_id": event.payment_id,
                        "amount_cents": event.amount_cents,
                        "currency": event.currency,
                        "token": token,
                    },
                )
            )
        elif isinstance(event, domain.ShipmentRequested):
            out.append(
                (
                    "shipment.requested",
                    {
                        "order_id": after.order_id,
                        "shipping_address": after.shipping_address,
                        "items": [_item_json(item) for item in after.items],
                    },
                )
            )
    if before is None or before.status is not after.status:
        out.append(
            (
                "order.status_changed",
                {
                    "order_id": after.order_id,
                    "status": after.status.value,
                    "reason": after.reason,
                },
            )
        )
    return out


def _item_json(item: Item) -> dict[str, Any]:
    return {"sku": item.sku, "name": item.name, "size": item.size, "quantity": item.quantity}


def _parse_placed(data: dict[str, Any]) -> domain.OrderPlaced:
    require(
        data,
        "order_id",
        "customer",
        "shipping_address",
        "items",
        "total_cents",
        "currency",
        "payment",
    )
    if not isinstance(data["payment"], dict) or not data["payment"].get("token"):
        raise InvalidEvent("payment.token is missing")
    try:
        items = tuple(
            Item(
                sku=str(raw["sku"]),
                name=str(raw["name"]),
                size=str(raw["size"]),
                quantity=int(raw["quantity"]),
                unit_price_cents=int(raw["unit_price_cents"]),
            )
            for raw in data["items"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent(f"items are malformed: {exc!r}") from None
    if any(item.quantity < 1 or item.unit_price_cents < 0 for item in items):
        raise InvalidEvent("items need a positive quantity and a non-negative price")
    return domain.OrderPlaced(
        order_id=str(data["order_id"]),
        customer=dict(data["customer"]),
        shipping_address=dict(data["shipping_address"]),
        items=items,
        total_cents=int(data["total_cents"]),
        currency=str(data["currency"]),
    )
