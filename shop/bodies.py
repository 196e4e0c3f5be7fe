"""The JSON API's bodies, one msgspec Struct each: the checkout request and every response.

These models are the single source of the API's limits: ``shop.validation`` checks a checkout
body field by field against ``NewOrder``, and ``shop.web.openapi`` generates the description's
schemas from all of them. The request's limits and patterns are the event contracts' own
(``workers.messaging.contracts``), so the shop refuses at the edge whatever an event behind it
would refuse further down.

Request models describe a value as the shop keeps it. A field is also read in a few friendlier
shapes, each by the field's reader in ``shop.validation``, which declares the JSON Schema of those
shapes beside the code that reads them; the API's description folds them into the field's schema
(``anyOf``), and the field's description tells them in words: whitespace around text and digits
is dropped, a size may come as a number (42), a card number may have one space or hyphen between
two digits, a country code may be lower case, and the numbers may come as digit text ("12", "09"),
as the product page's form sends them. A card number and a security code are text only: as a
JSON integer a card number loses digits past 2**53 in many a client, a code its zeros first.

A request model ignores a field it does not name (msgspec's default), as the event contracts do:
a client that sends one more field than this release knows is not refused for it. A response
model forbids the fields it does not name (``forbid_unknown_fields``), which the description
says as ``additionalProperties: false``: the shop writes those bodies, so a field added to a
response without its model fails the API's fuzz test instead of going undocumented.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from workers.messaging import contracts
from workers.messaging.contracts import (
    ADDRESS_LENGTH,
    COUNTRY_PATTERN,
    EMAIL_LENGTH,
    EMAIL_PATTERN,
    LINE_PATTERN,
    MAX_LINES,
    NAME_LENGTH,
    SKU_LENGTH,
)

# Card numbers are 12 to 19 digits (ISO/IEC 7812); the security code is 3 or 4.
CARD_NUMBER_LENGTHS = (12, 19)
CVC_PATTERN = r"^[0-9]{3,4}$"
# Cards are issued for a few years; a year further ahead is a typo (or a probe) that the gateway
# would refuse once the card is sealed and the order placed. The years this allows depend on the
# day, which no schema can say: the schema only bounds a year to four digits (LAST_YEAR), and
# shop.validation checks the rest.
CARD_YEARS_AHEAD = 20
LAST_YEAR = 9999


def _text(max_length: int, description: str, pattern: str = LINE_PATTERN) -> msgspec.Meta:
    """One line of text: 1 to ``max_length`` characters (code points, as PostgreSQL counts a
    VARCHAR), none of them a control character or a lone surrogate (``LINE_PATTERN``) unless
    ``pattern`` says something stricter."""
    return msgspec.Meta(
        min_length=1, max_length=max_length, pattern=pattern, description=description
    )


class RequestBody(msgspec.Struct, frozen=True):
    """Base of the request models: frozen, and ignoring fields they do not name."""


class Customer(RequestBody, frozen=True):
    """Who the order is for."""

    name: Annotated[
        str,
        _text(NAME_LENGTH, "Full name, as on the parcel. Whitespace around it is dropped."),
    ]
    email: Annotated[
        str,
        _text(
            EMAIL_LENGTH,
            "Where the confirmation goes: one @ and a dot after it, no spaces.",
            EMAIL_PATTERN,
        ),
    ]


class Address(RequestBody, frozen=True):
    """Where the parcel goes."""

    line1: Annotated[str, _text(ADDRESS_LENGTH, "Street and house number.")]
    city: Annotated[str, _text(ADDRESS_LENGTH, "City or town.")]
    postal_code: Annotated[str, _text(ADDRESS_LENGTH, "Postal code, as the country writes it.")]
    country: Annotated[
        str,
        msgspec.Meta(
            pattern=COUNTRY_PATTERN,
            description="ISO 3166-1 alpha-2 country code, such as NL; lower case is read as "
            "upper case. Shipping picks the carrier by it.",
        ),
    ]


class OrderLine(RequestBody, frozen=True):
    """Pairs of one shoe in one size."""

    sku: Annotated[
        contracts.Sku,
        msgspec.Meta(
            min_length=1,
            max_length=SKU_LENGTH,
            description="The shoe's code in the catalogue, such as RUN-001.",
        ),
    ]
    size: Annotated[
        contracts.Size,
        msgspec.Meta(
            description='EU size, as the catalogue lists it, such as "42"; a whole number '
            "(42) is read as its text.",
        ),
    ]
    quantity: Annotated[
        contracts.Quantity,
        msgspec.Meta(
            description='Pairs. Digit text, as a form sends it ("2"), is read as a number.'
        ),
    ]


class Card(RequestBody, frozen=True):
    """The card that pays. Sealed for the payment provider at once; never stored or logged."""

    card_number: Annotated[
        str,
        msgspec.Meta(
            min_length=CARD_NUMBER_LENGTHS[0],
            max_length=CARD_NUMBER_LENGTHS[1],
            pattern=r"^[0-9]+$",
            description="The digits 0-9 as text, passing the Luhn check. One space or hyphen "
            'between two digits ("4242 4242 4242 4242") and whitespace around are dropped first.',
        ),
    ]
    exp_month: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=12,
            description='Month of expiry, 1 to 12. Digit text ("09", whitespace around it '
            "dropped) is read as the number.",
        ),
    ]
    exp_year: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=LAST_YEAR,
            description=f"Year of expiry, this year to {CARD_YEARS_AHEAD} years ahead; two "
            "digits (31) mean 2000 onwards (2031). A month and year before the current month "
            'have expired. Digit text is read as the number (zeros first too: "0031" is 31).',
        ),
    ]
    cvc: Annotated[
        str,
        msgspec.Meta(
            pattern=CVC_PATTERN,
            description="The security code on the card, 3 or 4 digits as text; whitespace "
            "around them is dropped.",
        ),
    ]


class NewOrder(RequestBody, frozen=True):
    """The body of ``POST /api/orders``: who, where to, what, and the card that pays."""

    customer: Customer
    shipping_address: Address
    items: Annotated[
        list[OrderLine],
        msgspec.Meta(
            min_length=1,
            max_length=MAX_LINES,
            description="The order's lines; prices come from the catalogue, never from here.",
        ),
    ]
    payment: Card


# --- responses -----------------------------------------------------------------------------------


class ResponseBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of the response models: every field the shop sends is named, nothing else."""


class ErrorDetail(ResponseBody, frozen=True):
    """What was refused, and why."""

    code: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^[a-z0-9_]+$",
            description="What went wrong, for a program: invalid_fields, out_of_stock, …",
            examples=["invalid_fields"],
        ),
    ]
    message: Annotated[str, msgspec.Meta(description="What went wrong, for a person.")]
    fields: Annotated[
        dict[str, str],
        msgspec.Meta(
            description="Each invalid field, by its path in the body (items[0].quantity) or "
            "the header's name, with what is wrong; empty when no one field is to blame.",
        ),
    ]


class Error(ResponseBody, frozen=True):
    """Every refusal under /api: ``{"error": {"code", "message", "fields"}}``."""

    error: ErrorDetail


class SizeStock(ResponseBody, frozen=True):
    """One size of a shoe and the pairs of it left."""

    size: contracts.Size
    available: Annotated[int, msgspec.Meta(ge=0, description="Pairs left to order.")]


class Product(ResponseBody, frozen=True):
    """A shoe in the catalogue with the pairs left in each of its sizes."""

    sku: contracts.Sku
    name: contracts.ProductName
    brand: str
    colour: str
    hex: Annotated[
        str,
        msgspec.Meta(pattern=r"^#[0-9A-Fa-f]{6}$", description="The colour, as CSS writes it."),
    ]
    description: str
    price_cents: contracts.Cents
    currency: contracts.Currency
    sizes: list[SizeStock]


class Links(ResponseBody, frozen=True):
    """Where to go next."""

    # "self" is the field's name in JSON; in Python it is a method's first argument.
    self_: Annotated[str, msgspec.Meta(description="The order's URL under /api, to follow it.")] = (
        msgspec.field(name="self")
    )


class Accepted(ResponseBody, frozen=True):
    """The order is placed: stock reserved, the payment on its way. Location says where to
    follow it."""

    id: contracts.Uuid
    status: Literal["PLACED"]
    links: Links


class CancellationAccepted(ResponseBody, frozen=True):
    """The cancellation is asked for; the order's status says how it ends."""

    id: contracts.Uuid
    status: Literal["CANCELLATION_REQUESTED"]
    links: Links


class OrderCustomer(ResponseBody, frozen=True):
    """Who the order is for; the email and the address are not shown."""

    name: str


class OrderItem(ResponseBody, frozen=True):
    """One line of the order, priced from the catalogue when it was placed."""

    sku: contracts.Sku
    name: contracts.ProductName
    size: contracts.Size
    quantity: contracts.Quantity
    unit_price_cents: contracts.Cents


class PaymentSummary(ResponseBody, frozen=True):
    """How the order is paid: the card's brand and last four digits, never its number."""

    status: Literal["pending", "succeeded", "declined", "cancelled", "refunding", "refunded"]
    brand: Annotated[
        str, msgspec.Meta(pattern=r"^[a-z]{1,20}$", description="visa, mastercard, amex or card.")
    ]
    last4: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}$")]


class Shipment(ResponseBody, frozen=True):
    """The parcel, with the carrier that took it."""

    carrier: str
    tracking_number: str


class Delay(ResponseBody, frozen=True):
    """A message about the order waits in the dead letters for an operator."""

    since: Annotated[datetime, msgspec.Meta(description="When it first failed.")]
    stage: Annotated[
        str,
        msgspec.Meta(description="The step held up: order, payment, shipping or tracking."),
    ]


class TimelineEvent(ResponseBody, frozen=True):
    """One event of the order's saga, as the shop heard of it (who applied it, on which attempt,
    is the operators' saga view, /admin/orders/<id>)."""

    id: str
    type: Annotated[str, msgspec.Meta(examples=["shoeshop.order.placed.v2"])]
    source: Annotated[
        str, msgspec.Meta(examples=["/payments"], description="The component that emitted it.")
    ]
    time: datetime
    since_placed_s: Annotated[
        float, msgspec.Meta(ge=0, description="Seconds after the order was placed.")
    ]


class Order(ResponseBody, frozen=True):
    """An order as the shop has heard of it, with its whole saga."""

    id: contracts.Uuid
    status: contracts.OrderStatus
    reason: Annotated[
        contracts.Code | None,
        msgspec.Meta(description="Why a cancelled order was cancelled, such as payment_declined."),
    ]
    reason_text: Annotated[
        str | None,
        msgspec.Meta(
            description="The reason in words, as the tracking page shows it.",
            examples=["Your card was declined"],
        ),
    ]
    items: list[OrderItem]
    total_cents: contracts.Cents
    currency: contracts.Currency
    customer: OrderCustomer
    payment: PaymentSummary
    shipment: Annotated[Shipment | None, msgspec.Meta(description="The parcel, once it has left.")]
    cancellable: bool
    cancel_requested: bool
    delayed: Annotated[
        Delay | None,
        msgspec.Meta(description="Set while a message about the order waits in the dead letters."),
    ]
    timeline: list[TimelineEvent]


RESPONSES: tuple[type[ResponseBody], ...] = (Error, Product, Accepted, CancellationAccepted, Order)
"""The models of the API's response bodies, each a schema of its own in the description."""
