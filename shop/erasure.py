"""Erasing a customer on request: the shop's own copies first, then every other component told.

The shop is where a customer is known by email: it finds the customer's orders (case-blind, by
the indexed ``orders.email_key``), overwrites the name, email, address and sealed card wherever
it keeps them (the order view, its event log, its outbox; erasure's values still satisfy the
contracts, so the log still folds and a replay still parses), makes their checkouts' body HMACs
match no body, and emits ``customer.erased`` naming the orders, so orders, shipping and
notifications erase theirs. The order's facts (items, amounts, statuses, times) stay everywhere.
"""

from __future__ import annotations

import uuid

from celery import Celery
from sqlalchemy import bindparam, select, update

from shop.readmodel import email_key
from shop.tables import checkouts, heard_events, orders
from workers.messaging import contracts
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.erasure import (
    ERASED,
    ERASED_EMAIL,
    erase_event,
    erase_outbox,
    erased_address,
)
from workers.messaging.unit_of_work import publish_committed, unit_of_work

SOURCE = "/shop"

_ORDERS_OF = select(orders.c.id).where(orders.c.email_key == bindparam("key")).order_by(orders.c.id)
_ADDRESSES = select(orders.c.id, orders.c.shipping_address).where(
    orders.c.id.in_(bindparam("ids", expanding=True))
)
_VIEW = update(orders).where(orders.c.id == bindparam("key"))
_LOG = select(heard_events.c.seq, heard_events.c.event).where(
    heard_events.c.order_id.in_(bindparam("ids", expanding=True))
)
_CHECKOUTS = (
    update(checkouts)
    .where(checkouts.c.order_id.in_(bindparam("ids", expanding=True)))
    .values(body_hmac=ERASED)
)
_REWRITE_LOG = update(heard_events).where(heard_events.c.seq == bindparam("key"))


def orders_of(email: str) -> list[str]:
    """The ids of the orders placed with this email, matched as ``readmodel.email_key`` has it
    (without case, in every script, one letter for one), found by its index.
    Raises sqlalchemy.exc.SQLAlchemyError when the shop's database is away."""
    with engine_for("shop").connect() as conn:
        return list(conn.execute(_ORDERS_OF, {"key": email_key(email)}).scalars())


def erase(app: Celery, email: str) -> list[str]:
    """Erase the orders placed with ``email`` (as ``orders_of`` finds them, read again inside
    the erasure's own write transaction: an order placed since an earlier read is erased too)
    from the shop, and tell the others; returns their ids. Nothing is done or sent for none.
    Raises sqlalchemy.exc.SQLAlchemyError when the shop's database is away."""
    with unit_of_work("shop") as outbox:
        conn = outbox.conn
        order_ids = list(conn.execute(_ORDERS_OF, {"key": email_key(email)}).scalars())
        if not order_ids:
            return []
        for row in conn.execute(_ADDRESSES, {"ids": order_ids}).all():
            conn.execute(
                _VIEW,
                {
                    "key": row.id,
                    "customer": {"name": ERASED, "email": ERASED_EMAIL},
                    "email_key": email_key(ERASED_EMAIL),
                    "shipping_address": erased_address(row.shipping_address),
                },
            )
        for logged in conn.execute(_LOG, {"ids": order_ids}).all():
            conn.execute(_REWRITE_LOG, {"key": logged.seq, "event": erase_event(logged.event)})
        # A kept body HMAC would answer whether a guessed body is theirs: it now matches none.
        conn.execute(_CHECKOUTS, {"ids": order_ids})
        erase_outbox(conn, order_ids)
        for notice in erased_events(order_ids):
            outbox.emit(notice)
    publish_committed(app, "shop", outbox.emitted)
    return order_ids


def erased_events(order_ids: list[str]) -> list[Envelope]:
    """``customer.erased`` naming ``order_ids``, ERASURE_BATCH a message; each its own subject
    (an erasure is about a customer, not about one order)."""
    return [
        contracts.new_event(
            contracts.CustomerErased(order_ids=order_ids[start : start + contracts.ERASURE_BATCH]),
            source=SOURCE,
            subject=str(uuid.uuid4()),
        )
        for start in range(0, len(order_ids), contracts.ERASURE_BATCH)
    ]
