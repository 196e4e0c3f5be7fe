"""The events of an order's stream: small, past tense, and all that is ever stored of an order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workers.messaging.errors import InvariantViolation


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
    due_at: str  # ISO-8601 UTC: after this the order is cancelled for want of payment


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
class CancellationRequested:
    """A paid order is to be cancelled if shipping can still stop its parcel."""

    reason: str


@dataclass(frozen=True)
class ShipmentStopped:
    """Shipping stopped the parcel before it left: the money can go back."""

    order_id: str


@dataclass(frozen=True)
class OrderCancelled:
    reason: str


@dataclass(frozen=True)
class OrderRejected:
    """Orders ends an order it cannot carry on: an event about it can never be applied
    (``invalid_order``), or the shop gave up waiting for it to be accepted (``not_accepted``).
    The one event that may start a stream: orders may never have recorded the order."""

    order_id: str
    reason: str


@dataclass(frozen=True)
class LatePaymentReceived:
    """The money arrived after the order was cancelled: it is owed back."""

    payment_id: str
    charge_id: str


@dataclass(frozen=True)
class RefundRequested:
    refund_id: str
    payment_id: str
    amount_cents: int


@dataclass(frozen=True)
class PaymentRefunded:
    refund_id: str


@dataclass(frozen=True)
class RefundFailed:
    """The gateway refused the refund for good (``reason``, its code): the order needs an
    operator, who may ask for it again or close it with a note."""

    refund_id: str
    reason: str


@dataclass(frozen=True)
class AttentionNeeded:
    """A compensation of the order is stuck where no timer will see it: a message that gives
    money or stock back was parked in the dead letters (``detail``: the queue it was for)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class OperatorActed:
    """An operator's command about the order needing attention, as orders heard it."""

    action: str
    note: str


@dataclass(frozen=True)
class AttentionClosed:
    """An operator settled what the order needed by other means, and said how (``note``)."""

    note: str


@dataclass(frozen=True)
class TransitionIgnored:
    """An event arrived that no longer applies (stale, late, out of order): noted, not applied."""

    event: str
    status: str


DomainEvent = (
    OrderPlaced
    | PaymentRequested
    | PaymentSucceeded
    | PaymentDeclined
    | ShipmentRequested
    | OrderShipped
    | CancellationRequested
    | ShipmentStopped
    | OrderCancelled
    | OrderRejected
    | LatePaymentReceived
    | RefundRequested
    | PaymentRefunded
    | RefundFailed
    | AttentionNeeded
    | OperatorActed
    | AttentionClosed
    | TransitionIgnored
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
        CancellationRequested,
        ShipmentStopped,
        OrderCancelled,
        OrderRejected,
        LatePaymentReceived,
        RefundRequested,
        PaymentRefunded,
        RefundFailed,
        AttentionNeeded,
        OperatorActed,
        AttentionClosed,
        TransitionIgnored,
    )
}


def to_record(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    return type(event).__name__, dataclasses.asdict(event)


def from_record(name: str, data: dict[str, Any]) -> DomainEvent:
    cls = EVENT_CLASSES.get(name)
    if cls is None:
        raise InvariantViolation(f"the event store holds an unknown event {name!r}")
    if cls is OrderPlaced:
        return OrderPlaced(**{**data, "items": tuple(Item(**item) for item in data["items"])})
    return cls(**data)
