"""Translating between the orders stream and the integration events other components hear."""

from __future__ import annotations

from typing import Any

from workers.messaging import contracts
from workers.messaging.errors import InvariantViolation
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


def announcements(
    before: Order | None, after: Order, new_events: list[DomainEvent], token: str | None
) -> list[contracts.Event]:
    """What other components must hear about what just happened to the order."""
    out: list[contracts.Event] = []
    for event in new_events:
        match event:
            case PaymentRequested():
                if token is None:
                    raise InvariantViolation("a payment is requested only with the sealed card")
                out.append(
                    contracts.PaymentRequested(
                        order_id=after.order_id,
                        payment_id=event.payment_id,
                        amount_cents=event.amount_cents,
                        currency=event.currency,
                        token=token,
                    )
                )
            case ShipmentRequested():
                out.append(
                    contracts.ShipmentRequested(
                        order_id=after.order_id,
                        shipping_address=contracts.Address(**after.shipping_address),
                        items=[_shipment_item(item) for item in after.items],
                    )
                )
            case CancellationRequested():
                out.append(
                    contracts.ShipmentCancellationRequested(
                        order_id=after.order_id, reason=event.reason
                    )
                )
            case RefundRequested():
                out.append(
                    contracts.RefundRequested(
                        order_id=after.order_id,
                        payment_id=event.payment_id,
                        amount_cents=event.amount_cents,
                        refund_id=event.refund_id,
                    )
                )
    if before is None or before.status is not after.status:
        out.append(_status_change(after, new_events))
    return out


def _status_change(after: Order, new_events: list[DomainEvent]) -> contracts.OrderStatusChanged:
    """A thin notification; SHIPPED also names the parcel, so the shop, which shows the tracking
    number, hears one message about it rather than two (shipment.dispatched stays for orders)."""
    parcel = None
    for event in new_events:
        if isinstance(event, OrderShipped):
            parcel = contracts.Parcel(carrier=event.carrier, tracking_number=event.tracking_number)
    return contracts.OrderStatusChanged(
        order_id=after.order_id, status=after.status.value, reason=after.reason, shipment=parcel
    )


def _shipment_item(item: Item) -> contracts.ShipmentItem:
    return contracts.ShipmentItem(
        sku=item.sku, name=item.name, size=item.size, quantity=item.quantity
    )


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
