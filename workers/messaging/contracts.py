"""The data of every event on the wire: one typed model, a msgspec Struct, per current version.

Each model says what its producer emits today: a field the producer always sends is required,
with the type the producer sends (strict: no string is read as a number, no number as a
string). Every string and every integer is bounded by what every component that stores or
sends it can carry: the columns it lands in (VARCHAR lengths, PostgreSQL's 32-bit INTEGER),
UTF-8 (no lone surrogates), PostgreSQL's text (no NUL) and one line of a page or a mail (no
other control character, no line separator, no bidi control). The shop's request model
(``shop.bodies.NewOrder``) refuses at the edge whatever these would refuse further down, from
the same limits below.

A field the model does not know is ignored, not refused: a newer producer may add an optional
field without breaking an older consumer (a tolerant reader). Producers build their events from
these models (``new_event``), which checks them before they are written to an outbox.

The JSON Schemas in docs/events/ are generated from these models (see ``schemas``); the
versions of an event and the upcasters between them live in ``versions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec

from workers.messaging.envelope import (
    SOURCE_PATTERN,
    TYPE_PATTERN,
    Envelope,
    event_name,
    event_type,
    whole,
)

# The envelope's ids and the events' are one type (re-exported for the shop's models).
from workers.messaging.envelope import Uuid as Uuid
from workers.messaging.errors import InvariantViolation, describe

# --- limits, in characters (code points, as PostgreSQL counts a VARCHAR) and whole units -------
NAME_LENGTH = 100  # orders' order_summaries.customer_name VARCHAR(100)
EMAIL_LENGTH = 200
ADDRESS_LENGTH = 200  # each line of an address (JSON columns: a page's line, not a column's)
PRODUCT_NAME_LENGTH = 100  # products.name VARCHAR(100)
SKU_LENGTH = 32  # products.sku VARCHAR(32)
SIZE_LENGTH = 8  # stock.size VARCHAR(8)
REASON_LENGTH = 50  # orders.reason and order_summaries.reason VARCHAR(50)
CARRIER_LENGTH = TRACKING_LENGTH = 50  # shipments.carrier, tracking_number VARCHAR(50)
NOTE_LENGTH = 500  # an operator's note on an order needing attention (orders' stream, the shop)
GATEWAY_ID_LENGTH = 64  # payments.charge_id, refunds.gateway_refund_id VARCHAR(64)
TOKEN_LENGTH = 2048  # a sealed card: RSA-2048 OAEP in base64 is 344 characters
MAX_QUANTITY = 10  # pairs of one shoe and size in one order
MAX_LINES = 20  # lines in one order
MAX_CENTS = 2**31 - 1  # PostgreSQL INTEGER, where prices, totals and amounts are stored
# Events one step of orders is about: the one it heard and those it emitted (at most three today).
MAX_STEPS = 10

# C0 and C1 control characters, NUL among them (PostgreSQL refuses it in text); the line and
# paragraph separators (U+2028, U+2029), which break a line as a line feed does; the bidi
# controls (Unicode's Bidi_Control: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069),
# which make a name or an address display as other text than it is; and lone surrogates (JSON
# can escape one, "\ud83d", but UTF-8 cannot encode it). Written with escapes, which Python's re
# and JSON Schema's regular expressions read alike.
UNCARRIABLE = (
    r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
)
# Whitespace that is not a control character, as JSON Schema's "\s" has it (ECMA-262, U+FEFF
# among it) and Python's does not quite: written out, so both read one set.
WHITESPACE = r" \xa0\u1680\u2000-\u200a\u202f\u205f\u3000\ufeff"
LINE_PATTERN = whole(rf"[^{UNCARRIABLE}]*")
_NOT_IN_EMAIL = rf"@{WHITESPACE}{UNCARRIABLE}"
EMAIL_PATTERN = whole(rf"[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}]+\.[^{_NOT_IN_EMAIL}]+")
COUNTRY_PATTERN = whole(r"[A-Z]{2}")  # ISO 3166-1 alpha-2, upper case (shipping picks the carrier)
SKU_PATTERN = whole(rf"[A-Za-z0-9-]{{1,{SKU_LENGTH}}}")
CODE_PATTERN = whole(rf"[a-z0-9_]{{1,{REASON_LENGTH}}}")
# Printable ASCII without the space: what a gateway's id or a tracking number is made of.
OPAQUE_PATTERN = whole(r"[\x21-\x7e]+")


def _line(max_length: int) -> msgspec.Meta:
    return msgspec.Meta(min_length=1, max_length=max_length, pattern=LINE_PATTERN)


Code = Annotated[str, msgspec.Meta(pattern=CODE_PATTERN)]
"""A reason or a status code, such as ``payment_timeout`` or ``card_declined``."""
Currency = Annotated[str, msgspec.Meta(pattern=whole(r"[A-Z]{3}"))]
"""ISO 4217, as every currency column (VARCHAR(3)) keeps it."""
Cents = Annotated[int, msgspec.Meta(ge=0, le=MAX_CENTS)]
PositiveCents = Annotated[int, msgspec.Meta(ge=1, le=MAX_CENTS)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
Sku = Annotated[str, msgspec.Meta(pattern=SKU_PATTERN)]
Size = Annotated[str, _line(SIZE_LENGTH)]
ProductName = Annotated[str, _line(PRODUCT_NAME_LENGTH)]
GatewayId = Annotated[str, msgspec.Meta(max_length=GATEWAY_ID_LENGTH, pattern=OPAQUE_PATTERN)]
Carrier = Annotated[str, _line(CARRIER_LENGTH)]
TrackingNumber = Annotated[str, msgspec.Meta(max_length=TRACKING_LENGTH, pattern=OPAQUE_PATTERN)]
Token = Annotated[str, msgspec.Meta(max_length=TOKEN_LENGTH, pattern=whole(r"[A-Za-z0-9_=-]+"))]
"""A sealed card, URL-safe base64 (shop.sealing)."""

OrderStatus = Literal["PLACED", "PAYMENT_PENDING", "PAID", "SHIPPED", "CANCELLED"]


class Shape(msgspec.Struct, frozen=True, omit_defaults=True):
    """Base of every event's data and of the objects inside it: frozen, ignoring the fields it
    does not name (msgspec's default), and leaving out of the wire an optional field at its
    default (a thin notification stays thin). Strict types are asked for where the data is read
    (``versions.parse``) and where an event is made (``new_event``): msgspec checks types and
    limits when it converts data, never when a model is built in code. Each model says
    ``frozen=True`` again: msgspec would inherit it, a type checker does not.
    """


class Event(Shape, frozen=True):
    """The data of one event type; ``TYPE`` is its current wire type."""

    TYPE: ClassVar[str]


class Customer(Shape, frozen=True):
    name: Annotated[str, _line(NAME_LENGTH)]
    email: Annotated[str, msgspec.Meta(max_length=EMAIL_LENGTH, pattern=EMAIL_PATTERN)]


class Address(Shape, frozen=True):
    line1: Annotated[str, _line(ADDRESS_LENGTH)]
    city: Annotated[str, _line(ADDRESS_LENGTH)]
    postal_code: Annotated[str, _line(ADDRESS_LENGTH)]
    country: Annotated[str, msgspec.Meta(pattern=COUNTRY_PATTERN)]


class PricedItem(Shape, frozen=True):
    """One line of an order, priced from the catalogue at checkout."""

    sku: Sku
    name: ProductName
    size: Size
    quantity: Quantity
    unit_price_cents: Cents


class SealedCard(Shape, frozen=True):
    """The card as the shop passes it on: sealed for the gateway alone, plus brand and last four."""

    token: Token
    brand: Annotated[str, msgspec.Meta(pattern=whole(r"[a-z]{1,20}"))]
    last4: Annotated[str, msgspec.Meta(pattern=whole(r"[0-9]{4}"))]


class OrderPlaced(Event, frozen=True):
    """shop → orders: the whole order (event-carried state transfer)."""

    TYPE = event_type("order.placed", 2)
    order_id: Uuid
    customer: Customer
    shipping_address: Address
    items: Annotated[list[PricedItem], msgspec.Meta(min_length=1, max_length=MAX_LINES)]
    total_cents: PositiveCents  # what payments charges: a payment of nothing is none
    currency: Currency
    payment: SealedCard


class PaymentRequested(Event, frozen=True):
    """orders → payments: what payments needs to charge the card."""

    TYPE = event_type("payment.requested", 2)
    order_id: Uuid
    payment_id: Uuid
    amount_cents: PositiveCents
    currency: Currency
    token: Token


class PaymentSucceeded(Event, frozen=True):
    """payments → orders: the charge went through."""

    TYPE = event_type("payment.succeeded", 2)
    order_id: Uuid
    payment_id: Uuid
    charge_id: GatewayId


class PaymentDeclined(Event, frozen=True):
    """payments → orders: the gateway refused the charge, and why (its error code)."""

    TYPE = event_type("payment.declined", 2)
    order_id: Uuid
    payment_id: Uuid
    reason: Code


class ShipmentItem(Shape, frozen=True):
    """One line of a parcel: what to pack, without its price."""

    sku: Sku
    name: ProductName
    size: Size
    quantity: Quantity


class ShipmentRequested(Event, frozen=True):
    """orders → shipping: where to send what (event-carried state transfer)."""

    TYPE = event_type("shipment.requested", 2)
    order_id: Uuid
    shipping_address: Address
    items: Annotated[list[ShipmentItem], msgspec.Meta(min_length=1, max_length=MAX_LINES)]


class ShipmentDispatched(Event, frozen=True):
    """shipping → orders: the parcel left with a carrier."""

    TYPE = event_type("shipment.dispatched", 2)
    order_id: Uuid
    shipment_id: Uuid
    carrier: Carrier
    tracking_number: TrackingNumber


class Parcel(Shape, frozen=True):
    carrier: Carrier
    tracking_number: TrackingNumber


class SagaStep(Shape, frozen=True):
    """One event of the order's saga, as orders heard or emitted it: what the shop's timeline
    shows (``shop.readmodel.timeline``) without reading any other component's tables."""

    id: Uuid
    type: Annotated[str, msgspec.Meta(pattern=TYPE_PATTERN)]
    source: Annotated[str, msgspec.Meta(pattern=SOURCE_PATTERN)]
    time: Annotated[datetime, msgspec.Meta(tz=True)]


class OrderStatusChanged(Event, frozen=True):
    """orders → shop: the order's status after a step orders recorded (a thin notification);
    SHIPPED names the parcel.

    Sent when the status changes, and also after a step that leaves it as it was (a refund of a
    cancelled order, a cancellation waiting on the parcel), so the shop hears every step: ``steps``
    are the events the step was about, the one orders heard and those it emitted beside this one
    (empty in a v1 event, which announced status changes only).
    """

    TYPE = event_type("order.status_changed", 2)
    order_id: Uuid
    status: OrderStatus
    reason: Code | None
    shipment: Parcel | None = None
    steps: Annotated[list[SagaStep], msgspec.Meta(max_length=MAX_STEPS)] = msgspec.field(
        default_factory=list
    )


Fault = Literal["invalid", "retries_exhausted", "bug", "rejected_by_broker"]
"""Why a message was parked: it can never be applied (it does not parse, or breaks a rule of the
domain); a transient fault outlasted its retries; any other exception (a bug); or the broker
dead-lettered it (RabbitMQ)."""


class MessageParked(Event, frozen=True):
    """operations → shop, orders: a message about the order was parked in the dead letters (a
    thin notification, written with the dead letter). The shop shows the order as delayed;
    orders ends an order whose message was ``invalid`` (nothing can apply it: it would hang).

    ``queue`` is the component queue the message was for (or ``unknown``), ``since`` when it
    first failed, ``event_id`` the parked event's id (None when the body was no event).
    """

    TYPE = event_type("message.parked", 1)
    order_id: Uuid
    queue: Code
    since: Annotated[datetime, msgspec.Meta(tz=True)]
    event_id: Uuid | None
    fault: Fault


class MessageReplayed(Event, frozen=True):
    """operations → shop: an operator replayed a parked message about the order (a thin
    notification, written with the replay's record): the order resumes, and shows as delayed
    again only if the message fails again. ``event_id`` is the replayed event's id."""

    TYPE = event_type("message.replayed", 1)
    order_id: Uuid
    event_id: Uuid


ERASURE_BATCH = 100  # orders one customer.erased names at the most


class CustomerErased(Event, frozen=True):
    """shop → orders, shipping: a customer's personal data was erased from the shop on their
    request; each component erases it from what it keeps of the orders named."""

    TYPE = event_type("customer.erased", 1)
    order_ids: Annotated[list[Uuid], msgspec.Meta(min_length=1, max_length=ERASURE_BATCH)]


class OrderCancellationRequested(Event, frozen=True):
    """shop → orders: the customer asked to cancel."""

    TYPE = event_type("order.cancellation_requested", 2)
    order_id: Uuid
    reason: Code


class ShipmentCancellationRequested(Event, frozen=True):
    """orders → shipping: stop the parcel of a paid order if it has not left."""

    TYPE = event_type("shipment.cancellation_requested", 2)
    order_id: Uuid
    reason: Code


class ShipmentCancelled(Event, frozen=True):
    """shipping → orders: the parcel was stopped before it left."""

    TYPE = event_type("shipment.cancelled", 2)
    order_id: Uuid


class RefundRequested(Event, frozen=True):
    """orders → payments: give the payment back; the refund id is the idempotency key."""

    TYPE = event_type("refund.requested", 2)
    order_id: Uuid
    payment_id: Uuid
    amount_cents: PositiveCents
    refund_id: Uuid


class PaymentRefunded(Event, frozen=True):
    """payments → orders: the money went back."""

    TYPE = event_type("payment.refunded", 2)
    order_id: Uuid
    payment_id: Uuid
    amount_cents: PositiveCents
    refund_id: Uuid


class PaymentRefundFailed(Event, frozen=True):
    """payments → orders: the gateway refused the refund for good (``reason``, its code): the
    money is still the customer's to get back, by an operator's hand."""

    TYPE = event_type("payment.refund_failed", 1)
    order_id: Uuid
    payment_id: Uuid
    amount_cents: PositiveCents
    refund_id: Uuid
    reason: Code


class OrderAttentionChanged(Event, frozen=True):
    """orders → shop: a compensation of the order failed and waits for an operator
    (``reason``: ``refund_failed``, or ``message_parked`` for a compensating message parked in
    the dead letters), or, with ``reason`` None, no longer does (``note``: the operator's word
    when they closed it; ``detail``: the gateway's code or the parked message's queue)."""

    TYPE = event_type("order.attention_changed", 1)
    order_id: Uuid
    # The order's stream version after the step: a notice overtaken by a newer one is ignored.
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_CENTS)]
    reason: Code | None
    detail: Annotated[str, _line(NOTE_LENGTH)] | None = None
    note: Annotated[str, _line(NOTE_LENGTH)] | None = None


OperatorAction = Literal["retry_refund", "close"]
"""What an operator may do with an order needing attention: ask for the refund again (a new
refund id, so a new request to the gateway), or close it with a note (settled by other means)."""


class OrderOperatorActionRequested(Event, frozen=True):
    """operations → orders: an operator's command about an order needing attention (from
    ``shoeshop attention`` or the admin page); orders records it in the order's stream and acts
    on it, or records it as ignored when the order needs no attention."""

    TYPE = event_type("order.operator_action_requested", 1)
    order_id: Uuid
    action: OperatorAction
    note: Annotated[str, _line(NOTE_LENGTH)]


MODELS: dict[str, type[Event]] = {
    model.TYPE: model
    for model in (
        OrderPlaced,
        MessageParked,
        MessageReplayed,
        CustomerErased,
        PaymentRequested,
        PaymentSucceeded,
        PaymentDeclined,
        ShipmentRequested,
        ShipmentDispatched,
        OrderStatusChanged,
        OrderCancellationRequested,
        RefundRequested,
        PaymentRefunded,
        ShipmentCancellationRequested,
        ShipmentCancelled,
        PaymentRefundFailed,
        OrderAttentionChanged,
        OrderOperatorActionRequested,
    )
}
"""The model of each *current* wire type; an older version reaches it through its upcasters."""


def wire_type(name: str) -> str:
    """The current wire type of a named event: ``order.placed`` → ``shoeshop.order.placed.v2``.
    Raises KeyError for a name no model has."""
    for type_ in MODELS:
        if event_name(type_) == name:
            return type_
    raise KeyError(f"no event is named {name!r}")


def new_event(
    data: Event, *, source: str, cause: Envelope | None = None, subject: str | None = None
) -> Envelope:
    """The envelope of a new event of ``data``'s type: caused by ``cause`` (same subject and
    correlation, ``cause`` its causation) or starting a saga about ``subject``.

    The data is checked against its model as a consumer will check it, so a producer can never
    write an event its consumers would park: raises InvariantViolation naming the field, a bug
    of the producer's (the transaction writing it rolls back).
    """
    builtins = msgspec.to_builtins(data)
    try:
        msgspec.convert(builtins, type=type(data), strict=True)
    except msgspec.ValidationError as exc:
        raise InvariantViolation(f"{data.TYPE} would be invalid: {describe(exc)}") from None
    if cause is not None:
        return Envelope(
            type=data.TYPE,
            source=source,
            subject=cause.subject,
            data=builtins,
            correlationid=cause.correlationid or cause.subject,
            causationid=cause.id,
        )
    if subject is None:
        raise TypeError("new_event needs a cause or a subject")
    return Envelope(
        type=data.TYPE, source=source, subject=subject, data=builtins, correlationid=subject
    )
