"""Placing an order: reserve stock, record the order and write order.placed, in one transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from config.celery import app as celery_app
from config.settings import get_settings
from shop import readmodel
from shop.sealing import Sealer
from shop.tables import checkouts, products, stock
from shop.validation import (
    CheckoutRequest,
    IdempotencyKeyReused,
    ValidationFailed,
    parse_checkout,
)
from workers.messaging import contracts, tracing
from workers.messaging.envelope import Envelope, utcnow
from workers.messaging.unit_of_work import publish_committed, unit_of_work

SOURCE = "/shop"
# Mixed into the secret key so this HMAC never equals one Flask or CSRF computes with it.
_HMAC_PURPOSE = b"shoeshop checkout body v1"


class OutOfStock(Exception):
    """Not enough pairs of some size are left; nothing was reserved."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Placed:
    order_id: str
    created: bool
    events: tuple[Envelope, ...]


def body_hmac(request: CheckoutRequest, secret_key: str) -> str:
    """HMAC-SHA256 (hex) of what the request asks for, under a key derived from the app's secret.

    Computed on the validated request in a canonical form, so a retry that only reorders keys,
    respaces the JSON or sends 12 for "12" still matches. Never a plain hash: the request holds
    a card number, and a plain hash of one is undone by trying the numbers that end in its last
    four digits.
    """
    canonical = json.dumps(asdict(request), sort_keys=True, separators=(",", ":"))
    key = hmac.new(secret_key.encode(), _HMAC_PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def same_body(stored: str | None, computed: str) -> bool:
    """Whether a checkout stored with the HMAC ``stored`` answers a request whose HMAC is
    ``computed``. None, a checkout made before the shop kept HMACs, is taken as matching; an
    erased customer's checkout (erasure.ERASED) matches no body, so its key cannot tell
    whether a guessed name, email or address was theirs."""
    return stored is None or hmac.compare_digest(stored, computed)


def place_order(
    request: CheckoutRequest, token: str, idempotency_key: str | None, fingerprint: str
) -> Placed:
    """Accept the order or raise (ValidationFailed, OutOfStock) having changed nothing.

    ``fingerprint`` is the body's HMAC (body_hmac): an order already placed under the same
    ``idempotency_key`` is the answer if its HMAC matches, IdempotencyKeyReused if not.
    """
    try:
        with unit_of_work("shop") as outbox:
            conn = outbox.conn
            if existing := _answer_for_key(conn, idempotency_key, fingerprint):
                return existing
            lines = _price_lines(conn, request)
            _reserve(conn, request)
            order_id = str(uuid.uuid4())
            # Created inside the request's span when tracing is on, before the shop records
            # it: its log and its acceptance deadline keep the context it travels with.
            event = tracing.stamped(_placed_event(order_id, request, lines, token))
            _record(conn, order_id, idempotency_key, fingerprint, event)
            outbox.emit(event)
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer with its order.
        if idempotency_key is None:
            raise
        with unit_of_work("shop") as outbox:
            existing = _answer_for_key(outbox.conn, idempotency_key, fingerprint)
        if existing is None:
            raise
        return existing
    return Placed(order_id, created=True, events=tuple(outbox.emitted))


def _answer_for_key(conn: Connection, key: str | None, fingerprint: str) -> Placed | None:
    """The order placed under ``key`` for this body, None if there is none; raises
    IdempotencyKeyReused if the key placed an order for another body."""
    if not key:
        return None
    row = conn.execute(
        select(checkouts.c.order_id, checkouts.c.body_hmac).where(
            checkouts.c.idempotency_key == key
        )
    ).first()
    if row is None:
        return None
    if not same_body(row.body_hmac, fingerprint):
        raise IdempotencyKeyReused()
    return Placed(str(row.order_id), created=False, events=())


def _price_lines(conn: Connection, request: CheckoutRequest) -> list[dict[str, Any]]:
    """The order's items with names and prices from the catalogue, never from the client."""
    errors: dict[str, str] = {}
    priced = []
    for index, line in enumerate(request.lines):
        product = conn.execute(_PRODUCT, {"sku": line.sku}).first()
        if product is None:
            errors[f"items[{index}].sku"] = f"no shoe has the sku {line.sku!r}"
            continue
        sized = conn.execute(_SIZE, {"sku": line.sku, "size": line.size}).first()
        if sized is None:
            errors[f"items[{index}].size"] = f"{product.name} does not come in size {line.size}"
            continue
        priced.append(
            {
                "sku": line.sku,
                "name": product.name,
                "size": line.size,
                "quantity": line.quantity,
                "unit_price_cents": product.price_cents,
                "currency": product.currency,
            }
        )
    if errors:
        raise ValidationFailed(errors)
    return priced


_PRODUCT = select(products).where(products.c.sku == bindparam("sku"))
_SIZE = select(stock.c.size).where(
    and_(stock.c.sku == bindparam("sku"), stock.c.size == bindparam("size"))
)
_RESERVE = (
    update(stock)
    .where(
        stock.c.sku == bindparam("sku_key"),
        stock.c.size == bindparam("size_key"),
        stock.c.available >= bindparam("quantity"),
    )
    .values(
        available=stock.c.available - bindparam("quantity"),
        reserved=stock.c.reserved + bindparam("quantity"),
    )
)


def _reserve(conn: Connection, request: CheckoutRequest) -> None:
    """A conditional decrement per line: it never takes stock below zero, even under a race."""
    short: dict[str, str] = {}
    # Stock rows by (sku, size): the order every transaction of the shop takes them in
    # (shop.readmodel, before _count_move).
    in_lock_order = sorted(enumerate(request.lines), key=lambda pair: (pair[1].sku, pair[1].size))
    for index, line in in_lock_order:
        result = conn.execute(
            _RESERVE, {"sku_key": line.sku, "size_key": line.size, "quantity": line.quantity}
        )
        if result.rowcount != 1:
            short[f"items[{index}].quantity"] = f"not enough pairs left in size {line.size}"
    if short:
        raise OutOfStock(short)  # the transaction rolls back every reservation made above


def _placed_event(
    order_id: str, request: CheckoutRequest, lines: list[dict[str, Any]], token: str
) -> Envelope:
    data = contracts.OrderPlaced(
        order_id=order_id,
        customer=contracts.Customer(name=request.name, email=request.email),
        shipping_address=contracts.Address(**request.address),
        items=[
            contracts.PricedItem(
                sku=line["sku"],
                name=line["name"],
                size=line["size"],
                quantity=line["quantity"],
                unit_price_cents=line["unit_price_cents"],
            )
            for line in lines
        ],
        total_cents=sum(line["quantity"] * line["unit_price_cents"] for line in lines),
        currency=lines[0]["currency"],
        payment=contracts.SealedCard(
            token=token, brand=request.card.brand, last4=request.card.last4
        ),
    )
    return contracts.new_event(data, source=SOURCE, subject=order_id)


def _record(
    conn: Connection, order_id: str, idempotency_key: str | None, fingerprint: str, event: Envelope
) -> None:
    """The order enters the shop's log and view like any event it hears; the key is state."""
    readmodel.remember(conn, event)
    readmodel.apply(conn, event, live=True)
    if idempotency_key:
        conn.execute(
            insert(checkouts),
            {"idempotency_key": idempotency_key, "order_id": order_id, "body_hmac": fingerprint},
        )


def checkout(
    raw: Any, sealer: Sealer, idempotency_key: str | None, today: date | None = None
) -> Placed:
    """The whole checkout: validate, seal the card, place the order, publish order.placed.

    Raises ValidationFailed (IdempotencyKeyReused among them), OutOfStock or
    PaymentProviderUnavailable with nothing changed. Publishing is tried once right after the
    commit; if the broker is away, the relay sends it.
    """
    request = parse_checkout(raw, today or utcnow().date())
    token = sealer.seal(request.card)
    fingerprint = body_hmac(request, get_settings().secret_key)
    placed = place_order(request, token, idempotency_key, fingerprint)
    publish_committed(celery_app, "shop", placed.events)
    return placed
