"""A customer asks to cancel: the shop records the wish and tells orders, which decides."""

from __future__ import annotations

from sqlalchemy import select

from config.celery import app as celery_app
from shop import live, readmodel
from shop.readmodel import CUSTOMER_REQUEST
from shop.tables import orders
from workers.messaging import contracts
from workers.messaging.envelope import Envelope
from workers.messaging.unit_of_work import publish_committed, run_committed_effects, unit_of_work

SOURCE = "/shop"


class UnknownOrder(Exception):
    """No order has this id."""


class TooLateToCancel(Exception):
    """The order has shipped (or is already cancelled): there is nothing left to cancel."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the order is {status.lower()} and can no longer be cancelled")
        self.status = status


def request_cancellation(order_id: str) -> bool:
    """Ask for the order to be cancelled; False if it was already asked (nothing new sent)."""
    with unit_of_work("shop") as outbox:
        conn = outbox.conn
        row = conn.execute(
            select(orders.c.status, orders.c.cancel_requested_at)
            .where(orders.c.id == order_id)
            .with_for_update()
        ).first()
        if row is None:
            raise UnknownOrder(order_id)
        if row.status in readmodel.FINAL:
            raise TooLateToCancel(row.status)
        if row.cancel_requested_at is not None:
            return False
        event = _cancellation_requested(order_id)
        readmodel.remember(conn, event)
        readmodel.apply(conn, event, live=True)
        outbox.emit(event)
        live.announce_after_commit(celery_app, outbox, conn, order_id)
    publish_committed(celery_app, "shop", outbox.emitted)
    run_committed_effects(outbox)
    return True


def _cancellation_requested(order_id: str) -> Envelope:
    data = contracts.OrderCancellationRequested(order_id=order_id, reason=CUSTOMER_REQUEST)
    return contracts.new_event(data, source=SOURCE, subject=order_id)
