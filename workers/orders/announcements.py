"""Translating between the orders stream and the integration events other components hear."""

from __future__ import annotations

from typing import Any

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
    """order.placed's data, as its contract validated it, as the stream's first event."""
    return OrderPlaced(
        order_id=data["order_id"],
        customer=dict(data["customer"]),
        shipping_address=dict(data["shipping_address"]),
        items=tuple(
            Item(
                sku=raw["sku"],
                name=raw["name"],
                size=raw["size"],
                quantity=raw["quantity"],
                unit_price_cents=raw["unit_price_cents"],
            )
            for raw in data["items"]
        ),
        total_cents=data["total_cents"],
        currency=data["currency"],
    )
