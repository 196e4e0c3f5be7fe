"""The naive shop's steps, one transaction each: checkout, create order, charge, ship, shipped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from shop.seed import CURRENCY
from shop.validation import CheckoutRequest
from workers.bench.naive_tables import (
    CANCELLED,
    PAID,
    PAYMENT_PENDING,
    PLACED,
    SHIPPED,
    open_engine,
    orders,
    payments,
    products,
    shipments,
    stock,
)
from workers.messaging.database import begin_write
from workers.messaging.envelope import utcnow
from workers.shipping import carriers


class OutOfStock(Exception):
    """Some line has fewer pairs left than it asks for; nothing was reserved."""


class UnknownShoe(Exception):
    """A line names a sku or size the catalogue does not have; nothing was reserved."""


@dataclass(frozen=True)
class Payment:
    id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    token: str


@lru_cache(maxsize=1)
def engine() -> Engine:
    """This process's engine on the naive database, opened on first use (after any fork)."""
    return open_engine()


_PRICE = select(products).where(products.c.sku == bindparam("sku"))
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


def place(request: CheckoutRequest, token: str) -> str:
    """Insert the order and reserve its stock in one transaction; the new order's id.

    Raises UnknownShoe or OutOfStock with nothing written.
    """
    with begin_write(engine()) as conn:
        items = []
        for line in request.lines:
            product = conn.execute(_PRICE, {"sku": line.sku}).first()
            if product is None:
                raise UnknownShoe(line.sku)
            reserved = conn.execute(
                _RESERVE, {"sku_key": line.sku, "size_key": line.size, "quantity": line.quantity}
            )
            if reserved.rowcount != 1:
                # An unknown size reserves nothing either; the shop would say which it was.
                raise OutOfStock(f"{line.sku} in size {line.size}")
            items.append(
                {
                    "sku": line.sku,
                    "name": product.name,
                    "size": line.size,
                    "quantity": line.quantity,
                    "unit_price_cents": product.price_cents,
                }
            )
        order_id = str(uuid.uuid4())
        conn.execute(
            insert(orders),
            {
                "id": order_id,
                "status": PLACED,
                "customer": {"name": request.name, "email": request.email},
                "shipping_address": request.address,
                "items": items,
                "total_cents": sum(i["quantity"] * i["unit_price_cents"] for i in items),
                "currency": CURRENCY,
                "card_token": token,
                "card_brand": request.card.brand,
                "card_last4": request.card.last4,
                "placed_at": utcnow(),
            },
        )
    return order_id


def create_order(order_id: str) -> None:
    """The order is taken up: PAYMENT_PENDING, with its payment (and idempotency key) made."""
    with begin_write(engine()) as conn:
        order = conn.execute(select(orders).where(orders.c.id == order_id)).one()
        if conn.execute(select(payments.c.id).where(payments.c.order_id == order_id)).first():
            return  # a redelivery: the payment exists, and its key with it
        conn.execute(
            insert(payments),
            {
                "id": str(uuid.uuid4()),
                "order_id": order_id,
                "amount_cents": order.total_cents,
                "currency": order.currency,
                "status": "pending",
                "created_at": utcnow(),
            },
        )
        _set_status(conn, order_id, PAYMENT_PENDING)


def payment_of(order_id: str) -> Payment:
    with engine().connect() as conn:
        row = conn.execute(
            select(payments, orders.c.card_token)
            .join(orders, orders.c.id == payments.c.order_id)
            .where(payments.c.order_id == order_id)
        ).one()
    return Payment(row.id, row.order_id, row.amount_cents, row.currency, row.status, row.card_token)


def record_charge(payment: Payment, charge_id: str) -> None:
    with begin_write(engine()) as conn:
        conn.execute(
            update(payments)
            .where(payments.c.id == payment.id)
            .values(status="succeeded", charge_id=charge_id)
        )
        _set_status(conn, payment.order_id, PAID)


def record_decline(payment: Payment, reason: str) -> None:
    """The card was declined: the order is cancelled and its stock goes back on the shelf."""
    with begin_write(engine()) as conn:
        conn.execute(
            update(payments)
            .where(payments.c.id == payment.id)
            .values(status="declined", reason=reason)
        )
        _set_status(conn, payment.order_id, CANCELLED, reason="payment_declined")
        _move_stock(conn, payment.order_id, stock.c.available)


def ship(order_id: str) -> None:
    """Dispatch the order's parcel: one shipment row, with its carrier and tracking number
    chosen as the system's shipping component chooses them."""
    shipment_id = str(uuid.uuid4())
    with begin_write(engine()) as conn:
        if conn.execute(select(shipments.c.id).where(shipments.c.order_id == order_id)).first():
            return  # a redelivery: the parcel has left
        address = conn.execute(
            select(orders.c.shipping_address).where(orders.c.id == order_id)
        ).scalar_one()
        carrier = carriers.carrier_for(address["country"])
        conn.execute(
            insert(shipments),
            {
                "id": shipment_id,
                "order_id": order_id,
                "carrier": carrier,
                "tracking_number": carriers.tracking_number(carrier, shipment_id),
                "dispatched_at": utcnow(),
            },
        )


def mark_shipped(order_id: str) -> None:
    """SHIPPED, and its reserved pairs counted as sold."""
    with begin_write(engine()) as conn:
        shipped = conn.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.status == PAID)
            .values(status=SHIPPED, shipped_at=utcnow())
        )
        if shipped.rowcount == 1:
            _move_stock(conn, order_id, stock.c.sold)


def _set_status(conn: Connection, order_id: str, status: str, reason: str | None = None) -> None:
    conn.execute(update(orders).where(orders.c.id == order_id).values(status=status, reason=reason))


def _move_stock(conn: Connection, order_id: str, to: Any) -> None:
    """Each line's reserved pairs move to ``to`` (stock.c.sold or stock.c.available)."""
    items = conn.execute(select(orders.c["items"]).where(orders.c.id == order_id)).scalar_one()
    for item in items:
        conn.execute(
            update(stock)
            .where(stock.c.sku == item["sku"], stock.c.size == item["size"])
            .values(
                {stock.c.reserved: stock.c.reserved - item["quantity"], to: to + item["quantity"]}
            )
        )
