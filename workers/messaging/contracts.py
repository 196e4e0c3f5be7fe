"""The data of every event on the wire: one typed model, a msgspec Struct, per current version.

Each model says what its producer emits today: a field the producer always sends is required,
with the type the producer sends (strict: no string is read as a number, no number as a
string). Limits are only those a handler downstream needs (a non-empty id, a positive amount, a
known status), so no event a current producer emits is refused here. A field the model does not
know is ignored, not refused: a newer producer may add an optional field without breaking an
older consumer (a tolerant reader).

The JSON Schemas in docs/events/ are generated from these models (see ``schemas``); the
versions of an event and the upcasters between them live in ``versions``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from workers.messaging.envelope import event_type

Text = Annotated[str, msgspec.Meta(min_length=1)]
"""A string a handler keys on or acts on (an id, a reason, a currency): never empty."""

OrderStatus = Literal["PLACED", "PAYMENT_PENDING", "PAID", "SHIPPED", "CANCELLED"]


class Shape(msgspec.Struct, frozen=True):
    """Base of every event's data and of the objects inside it: frozen, and ignoring the fields
    it does not name (msgspec's default). Strict types are asked for where the data is read
    (``versions.parse``): msgspec checks types and limits when it converts data, never when a
    model is built in code. Each model says ``frozen=True`` again: msgspec would inherit it, a
    type checker does not.
    """


class Customer(Shape, frozen=True):
    name: str
    email: str


class Address(Shape, frozen=True):
    line1: str
    city: str
    postal_code: str
    # Shipping picks the carrier by country.
    country: Text


class PricedItem(Shape, frozen=True):
    """One line of an order, priced from the catalogue at checkout."""

    sku: str
    name: str
    size: str
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    unit_price_cents: Annotated[int, msgspec.Meta(ge=0)]


class SealedCard(Shape, frozen=True):
    """The card as the shop passes it on: sealed for the gateway alone, plus brand and last four."""

    token: Text
    brand: str
    last4: str


class OrderPlaced(Shape, frozen=True):
    """shop → orders: the whole order (event-carried state transfer)."""

    order_id: Text
    customer: Customer
    shipping_address: Address
    items: Annotated[list[PricedItem], msgspec.Meta(min_length=1)]
    total_cents: int
    currency: Text
    payment: SealedCard


class PaymentRequested(Shape, frozen=True):
    """orders → payments: what payments needs to charge the card."""

    order_id: Text
    payment_id: Text
    amount_cents: Annotated[int, msgspec.Meta(gt=0)]
    currency: Text
    token: Text


class PaymentSucceeded(Shape, frozen=True):
    """payments → orders: the charge went through."""

    order_id: Text
    payment_id: Text
    charge_id: Text


class PaymentDeclined(Shape, frozen=True):
    """payments → orders: the gateway refused the charge, and why."""

    order_id: Text
    payment_id: Text
    reason: Text


class ShipmentItem(Shape, frozen=True):
    """One line of a parcel: what to pack, without its price."""

    sku: str
    name: str
    size: str
    quantity: int


class ShipmentRequested(Shape, frozen=True):
    """orders → shipping: where to send what (event-carried state transfer)."""

    order_id: Text
    shipping_address: Address
    items: list[ShipmentItem]


class ShipmentDispatched(Shape, frozen=True):
    """shipping → orders: the parcel left with a carrier."""

    order_id: Text
    shipment_id: Text
    carrier: Text
    tracking_number: Text


class Parcel(Shape, frozen=True):
    carrier: Text
    tracking_number: Text


class OrderStatusChanged(Shape, frozen=True):
    """orders → shop: the order's new status (a thin notification); SHIPPED names the parcel."""

    order_id: Text
    status: OrderStatus
    reason: str | None
    shipment: Parcel | None = None


class OrderCancellationRequested(Shape, frozen=True):
    """shop → orders: the customer asked to cancel."""

    order_id: Text
    reason: Text


class ShipmentCancellationRequested(Shape, frozen=True):
    """orders → shipping: stop the parcel of a paid order if it has not left."""

    order_id: Text
    reason: str


class ShipmentCancelled(Shape, frozen=True):
    """shipping → orders: the parcel was stopped before it left."""

    order_id: Text


class RefundRequested(Shape, frozen=True):
    """orders → payments: give the payment back; the refund id is the idempotency key."""

    order_id: Text
    payment_id: Text
    amount_cents: int
    refund_id: Text


class PaymentRefunded(Shape, frozen=True):
    """payments → orders: the money went back."""

    order_id: Text
    payment_id: str
    amount_cents: int
    refund_id: Text


MODELS: dict[str, type[Shape]] = {
    event_type("order.placed"): OrderPlaced,
    event_type("payment.requested"): PaymentRequested,
    event_type("payment.succeeded"): PaymentSucceeded,
    event_type("payment.declined"): PaymentDeclined,
    event_type("shipment.requested"): ShipmentRequested,
    event_type("shipment.dispatched"): ShipmentDispatched,
    event_type("order.status_changed"): OrderStatusChanged,
    event_type("order.cancellation_requested"): OrderCancellationRequested,
    event_type("refund.requested"): RefundRequested,
    event_type("payment.refunded"): PaymentRefunded,
    event_type("shipment.cancellation_requested"): ShipmentCancellationRequested,
    event_type("shipment.cancelled"): ShipmentCancelled,
}
"""The model of each *current* wire type; an older version reaches it through its upcasters."""
