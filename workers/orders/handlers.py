"""What the orders component does with each event it hears: decide, append, project, announce."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection

from config.settings import get_settings
from workers.messaging.envelope import Envelope, event_type, utcnow
from workers.messaging.errors import TransientError
from workers.messaging.outbox import Outbox
from workers.orders import domain, projections, store
from workers.orders.announcements import SOURCE, announce, parse_placed
from workers.orders.domain import Order, Status
from workers.orders.events import DomainEvent

# Every handler reads data the consumer has already checked against its event's contract
# (workers.messaging.contracts): the fields it reads are there, with their types.

Decision = Callable[[Order | None], list[DomainEvent]]


class OrderNotYetKnown(TransientError):
    """An event about an order whose order.placed has not been applied yet; retried."""


def on_order_placed(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    placed = parse_placed(event.data)
    payment_id = str(uuid.uuid4())
    due_at = utcnow() + timedelta(seconds=get_settings().payment_timeout_s)
    token = event.data["payment"]["token"]
    decide(
        conn,
        event,
        outbox,
        placed.order_id,
        lambda order: domain.place(order, placed, payment_id, due_at),
        token=token,
    )


def on_payment_succeeded(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    data = event.data
    refund_id = str(uuid.uuid4())
    decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_payment(
            order, data["payment_id"], data["charge_id"], refund_id
        ),
    )


def on_payment_declined(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    data = event.data
    decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_decline(order, data["payment_id"], data["reason"]),
    )


def on_shipment_dispatched(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    data = event.data
    decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_dispatch(
            order, data["shipment_id"], data["carrier"], data["tracking_number"]
        ),
    )


def on_cancellation_requested(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    data = event.data
    decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.request_cancellation(order, data["reason"]),
    )


def on_shipment_cancelled(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    refund_id = str(uuid.uuid4())
    decide(
        conn,
        event,
        outbox,
        event.data["order_id"],
        lambda order: domain.record_shipment_stopped(order, refund_id),
    )


def on_payment_refunded(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    data = event.data
    decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_refund(order, data["refund_id"]),
    )


def expire_if_unpaid(conn: Connection, order_id: str, now: datetime, outbox: Outbox) -> None:
    """The payment deadline of one order has passed: cancel it if it is still unpaid."""
    cause = Envelope(
        type=event_type("payment.deadline_passed"),
        source=SOURCE,
        subject=order_id,
        data={"order_id": order_id, "checked_at": now.isoformat()},
        correlationid=order_id,
    )
    decide(
        conn,
        cause,
        outbox,
        order_id,
        lambda order: domain.expire_payment(order, now),
        record_ignored=False,
    )
    store.clear_deadline(conn, order_id)


def decide(
    conn: Connection,
    cause: Envelope,
    outbox: Outbox,
    order_id: str,
    decision: Decision,
    *,
    token: str | None = None,
    record_ignored: bool = True,
) -> None:
    """Load the stream, let the domain decide, append, project, and announce the outcome."""
    history = store.load(conn, order_id)
    before = domain.fold(history)
    if before is None and cause.name != "order.placed":
        # Overtook the order it is about (a relayed order.placed can arrive late): wait.
        raise OrderNotYetKnown(f"order {order_id} is not known yet")
    new_events = decision(before)
    if not new_events:
        if before is None or not record_ignored:
            return
        new_events = domain.ignored(before, cause.name)
    now = utcnow()
    store.append(conn, order_id, len(history), new_events, cause, now)
    projections.apply_live(conn, before, new_events, now)
    after = domain.fold([*history, *new_events])
    assert after is not None
    _keep_deadline(conn, before, after, now)
    for message in announce(before, after, new_events, token, cause):
        outbox.emit(message)


def _keep_deadline(conn: Connection, before: Order | None, after: Order, now: datetime) -> None:
    """The payment timer exists exactly while the order waits for its payment."""
    waiting_before = before is not None and before.status is Status.PAYMENT_PENDING
    waiting_after = after.status is Status.PAYMENT_PENDING
    if waiting_after and not waiting_before and after.payment_due_at:
        store.set_deadline(conn, after.order_id, datetime.fromisoformat(after.payment_due_at))
    elif waiting_before and not waiting_after:
        store.clear_deadline(conn, after.order_id)
