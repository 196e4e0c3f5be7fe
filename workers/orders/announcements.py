"""Translating between the orders stream and the integration events other components hear."""

from __future__ import annotations

from typing import Any

from workers.messaging.envelope import require
from workers.messaging.errors import InvalidEvent
from workers.orders.domain import Order
from workers.orders.events import (
    CancellationRequested,
    DomainEvent,
    Item,
    OrderPlaced,
    OrderShipped,
    PaymentRequested,
    RefundRequested,
    ShipmentRequested,
)

Announcement = tuple[str, dict[str, Any]]


def announcements(
    before: Order | None, after: Order, new_events: list[DomainEvent], token: str | None
) -> list[Announcement]:
    """What other components must hear about what just happened to the order."""
    out: list[Announcement] = []
    for event in new_events:
        match event:
            case PaymentRequested():
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
            case ShipmentRequested():
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
            case CancellationRequested():
                out.append(
                    (
                        "shipment.cancellation_requested",
                        {
                            "order_id": after.order_id,
                            "reason": event.reason,
                        },
                    )
                )
            case RefundRequested():
                out.append(
                    (
                        "refund.requested",
                        {
                            "order_id": after.order_id,
                            "payment_id": event.payment_id,
                            "amount_cents": event.amount_cents,
                            "refund_id": event.refund_id,
                        },
                    )
                )
    if before is None or before.status is not after.status:
        out.append(("order.status_changed", _status_change(after, new_events)))
    return out


def _status_change(after: Order, new_events: list[DomainEvent]) -> dict[str, Any]:
    """A thin notification; SHIPPED also names the parcel, so the shop, which shows the tracking
    number, hears one message about it rather than two (shipment.dispatched stays for orders)."""
    data: dict[str, Any] = {
        "order_id": after.order_id,
        "status": after.status.value,
        "reason": after.reason,
    }
    for event in new_events:
        if isinstance(event, OrderShipped):
            data["shipment"] = {
                "carrier": event.carrier,
                "tracking_number": event.tracking_number,
            }
    return data


def _item_json(item: Item) -> dict[str, Any]:
    return {"sku": item.sku, "name": item.name, "size": item.size, "quantity": item.quantity}


def parse_placed(data: dict[str, Any]) -> OrderPlaced:
    """order.placed's data as the stream's first event; InvalidEvent names what is wrong."""
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
        total = int(data["total_cents"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent(f"items are malformed: {exc!r}") from None
    if any(item.quantity < 1 or item.unit_price_cents < 0 for item in items):
        raise InvalidEvent("items need a positive quantity and a non-negative price")
    return OrderPlaced(
        order_id=str(data["order_id"]),
        customer=dict(data["customer"]),
        shipping_address=dict(data["shipping_address"]),
        items=items,
        total_cents=total,
        currency=str(data["currency"]),
    )
