"""The order aggregate: its events, the fold that gives its state, and the decisions it makes.

Pure: no I/O, no clock, no ids generated here. Every decision takes the current state and
returns the new events; an event that no longer applies yields none (it is stale, not an error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from workers.messaging.errors import InvalidEvent, InvariantViolation


class Status(StrEnum):
    PLACED = "PLACED"
    PAYMENT_PENDING = "PAYMENT_PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


class Reason(StrEnum):
    PAYMENT_DECLINED = "payment_declined"
    CUSTOMER_REQUEST = "customer_request"
    PAYMENT_TIMEOUT = "payment_timeout"


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    size: str
    quantity: int
    unit_price_cents: int

    @property
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


# The events of an order's stream: small, past tense, and all that is stored of an order.


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    customer: dict[str, str]
    shipping_address: dict[str, str]
    items: tuple[Item, ...]
    total_cents: int
    currency: str


@dataclass(frozen=True)
class PaymentRequested:
    payment_id: str
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class PaymentSucceeded:
    payment_id: str
    charge_id: str


@dataclass(frozen=True)
class PaymentDeclined:
    payment_id: str
    reason: str


@dataclass(frozen=True)
class ShipmentRequested:
    order_id: str


@dataclass(frozen=True)
class OrderShipped:
    shipment_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class OrderCancelled:
    reason: str


DomainEvent = (
    OrderPlaced
    | PaymentRequested
    | PaymentSucceeded
    | PaymentDeclined
    | ShipmentRequested
    | OrderShipped
    | OrderCancelled
)
EVENT_CLASSES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls
    for cls in (
        OrderPlaced,
        PaymentRequested,
        PaymentSucceeded,
        PaymentDeclined,
        ShipmentRequested,
        OrderShipped,
        OrderCancelled,
    )
}


@dataclass(frozen=True)
class Order:
    """The state of one order, as folded from its events."""

    order_id: str
    status: Status
    customer: dict[str, str]
    shipping_address: dict[str, str]
    items: tuple[Item, ...]
    total_cents: int
    currency: str
    reason: str | None = None
    payment_id: str | None = None
    charge_id: str | None = None
    shipment_id: str | None = None
    version: int = 0


def total_cents(items: Iterable[Item]) -> int:
    return sum(item.line_total_cents for item in items)


# --- the fold ---------------------------------------------------------------------------


def evolve(order: Order | None, event: DomainEvent) -> Order:
    """Apply one stored event to the state; the event is a fact, so it always applies."""
    if isinstance(event, OrderPlaced):
        return Order(
            order_id=event.order_id,
            status=Status.PLACED,
            customer=event.customer,
            shipping_address=event.shipping_address,
            items=event.items,
            total_cents=event.total_cents,
            currency=event.currency,
            version=1,
        )
    if order is None:
        raise InvariantViolation(f"{type(event).__name__} cannot start an order's stream")
    changes = _changes(event)
    return dataclasses.replace(order, version=order.version + 1, **changes)


def _changes(event: DomainEvent) -> dict[str, Any]:
    match event:
        case PaymentRequested(payment_id=payment_id):
            return {"status": Status.PAYMENT_PENDING, "payment_id": payment_id}
        case PaymentSucceeded(charge_id=charge_id):
            return {"status": Status.PAID, "charge_id": charge_id}
        case PaymentDeclined():
            return {}
        case ShipmentRequested():
            return {}
        case OrderShipped(shipment_id=shipment_id):
            return {"status": Status.SHIPPED, "shipment_id": shipment_id}
        case OrderCancelled(reason=reason):
            return {"status": Status.CANCELLED, "reason": reason}
    raise InvariantViolation(f"unknown order event {type(event).__name__}")


def fold(events: Iterable[DomainEvent]) -> Order | None:
    order: Order | None = None
    for event in events:
        order = evolve(order, event)
    return order


# --- decisions --------------------------------------------------------------------------


def place(order: Order | None, placed: OrderPlaced, payment_id: str) -> list[DomainEvent]:
    """A new order asks for its payment at once; placing the same order again does nothing."""
    if order is not None:
        return []
    if not placed.items:
        raise InvalidEvent("an order needs at least one item")
    if total_cents(placed.items) != placed.total_cents:
        raise InvalidEvent(
            f"total_cents {placed.total_cents} is not the sum of the items "
            f"({total_cents(placed.items)})"
        )
    return [placed, PaymentRequested(payment_id, placed.total_cents, placed.currency)]


def record_payment(order: Order | None, payment_id: str, charge_id: str) -> list[DomainEvent]:
    if not _awaits_payment(order, payment_id):
        return []
    assert order is not None
    return [PaymentSucceeded(payment_id, charge_id), ShipmentRequested(order.order_id)]


def record_decline(order: Order | None, payment_id: str, reason: str) -> list[DomainEvent]:
    if not _awaits_payment(order, payment_id):
        return []
    return [PaymentDeclined(payment_id, reason), OrderCancelled(Reason.PAYMENT_DECLINED.value)]


def record_dispatch(
    order: Order | None, shipment_id: str, carrier: str, tracking_number: str
) -> list[DomainEvent]:
    if order is None or order.status is not Status.PAID:
        return []
    return [OrderShipped(shipment_id, carrier, tracking_number)]


def _awaits_payment(order: Order | None, payment_id: str) -> bool:
    return (
        order is not None
        and order.status is Status.PAYMENT_PENDING
        and order.payment_id == payment_id
    )


# --- storage form -----------------------------------------------------------------------


def to_record(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    return type(event).__name__, dataclasses.asdict(event)


def from_record(name: str, data: dict[str, Any]) -> DomainEvent:
    cls = EVENT_CLASSES.get(name)
    if cls is None:
        raise InvariantViolation(f"the event store holds an unknown event {name!r}")
    if cls is OrderPlaced:
        return OrderPlaced(**{**data, "items": tuple(Item(**item) for item in data["items"])})
    return cls(**data)
