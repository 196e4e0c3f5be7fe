"""What the orders component does with each event it hears: decide, append, project, announce."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection

from config.settings import get_settings
from workers.messaging import tracing
from workers.messaging.envelope import Envelope, event_type, utcnow
from workers.messaging.erasure import (
    erase_data,
    erase_outbox,
    erased_among,
    lock_orders,
    remember_erased,
)
from workers.messaging.errors import TransientError
from workers.messaging.outbox import Outbox
from workers.orders import domain, projections, store
from workers.orders.announcements import SOURCE, announce, parse_placed
from workers.orders.domain import Order, Reason, Status
from workers.orders.events import DomainEvent

# Every handler reads data the consumer has already checked against its event's contract
# (workers.messaging.contracts): the fields it reads are there, with their types.

Decision = Callable[[Order | None], list[DomainEvent]]


class OrderNotYetKnown(TransientError):
    """An event about an order whose order.placed has not been applied yet; retried."""


def on_order_placed(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    """Record the order and ask for its payment, however late it arrives (events wait on the
    broker while orders is down: that is the promise). Whether it came too late is the shop's
    to say, by its acceptance deadline; a cancellation that follows it refunds what was paid.
    An order whose customer.erased came first is recorded erased (its card too: the payment is
    refused and the order ends cancelled)."""
    data = event.data
    lock_orders(conn, [data["order_id"]])
    if erased_among(conn, store.erased_orders, [data["order_id"]]):
        data = erase_data(data)  # its customer was erased before it came: kept erased
    placed = parse_placed(data)
    payment_id = str(uuid.uuid4())
    due_at = utcnow() + timedelta(seconds=get_settings().payment_timeout_s)
    token = data["payment"]["token"]
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
    """A customer's cancellation waits for an order orders has not recorded yet (it may be on
    its way); the shop's, sent once its acceptance deadline passed (``not_accepted``), is final:
    an order never recorded is rejected, and its order.placed, should it come, ignored."""
    data = event.data
    order_id, reason = data["order_id"], data["reason"]
    if reason == Reason.NOT_ACCEPTED:
        decide(
            conn,
            event,
            outbox,
            order_id,
            lambda order: domain.reject(order, order_id, reason),
            unknown_order_ok=True,
        )
        return
    decide(conn, event, outbox, order_id, lambda order: domain.request_cancellation(order, reason))


def on_message_parked(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    """A message about an order was parked. One that nothing can apply (``invalid``: it does not
    parse, or breaks a rule of the domain) would leave the order hanging: it is rejected
    (``invalid_order``; from the envelope's subject, all that may be readable of it). Any other
    waits for an operator's replay, within the deadline of the order's status; one that gives
    money or stock back has no deadline, so the order needs attention (domain.record_parked).
    A letter about an order orders never recorded changes nothing."""
    data = event.data
    order_id = data["order_id"]
    if data["fault"] != "invalid":
        decide(
            conn,
            event,
            outbox,
            order_id,
            lambda order: domain.record_parked(order, data["queue"]),
            unknown_order_ok=True,
            record_ignored=False,
        )
        return
    decide(
        conn,
        event,
        outbox,
        order_id,
        lambda order: domain.reject(order, order_id, Reason.INVALID_ORDER.value),
        unknown_order_ok=True,
        record_ignored=False,
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


def on_payment_refund_failed(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    data = event.data
    decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.record_refund_failure(order, data["refund_id"], data["reason"]),
    )


def on_operator_action_requested(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    """An operator's command (``shoeshop attention``, the admin page): recorded in the order's
    stream with what it did, or as ignored when it no longer applies."""
    data = event.data
    refund_id = str(uuid.uuid4())
    decide(
        conn,
        event,
        outbox,
        data["order_id"],
        lambda order: domain.act(order, data["action"], data["note"], refund_id),
        unknown_order_ok=True,  # checked at the edge; one orders never recorded changes nothing
    )


def on_customer_erased(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    """Erase the customer's personal data from what orders keeps of the orders named: the
    OrderPlaced of each stream (the one event holding it, overwritten in place: erasure is the
    event store's one exception to append-only), the order list's name, the outbox's copies.
    The orders are remembered as erased (``store.erased_orders``), so one whose order.placed
    has not come yet (it is being retried) is recorded erased when it comes."""
    order_ids = list(event.data["order_ids"])
    lock_orders(conn, order_ids)
    remember_erased(conn, store.erased_orders, order_ids, utcnow())
    store.erase_personal_data(conn, order_ids)
    projections.erase_personal_data(conn, order_ids)
    erase_outbox(conn, order_ids)


def deadline_passed(order_id: str, now: datetime, traceparent: str = "") -> Envelope:
    """The timer's own event, the cause of what passing a deadline decides: an
    order.deadline_passed about ``order_id``, checked at ``now``, in the trace context its
    deadline row kept (``traceparent``; empty: none)."""
    return Envelope(
        type=event_type("order.deadline_passed"),
        source=SOURCE,
        subject=order_id,
        data={"order_id": order_id, "checked_at": now.isoformat()},
        correlationid=order_id,
        traceparent=traceparent,
    )


def expire(
    conn: Connection, order_id: str, now: datetime, outbox: Outbox, cause: Envelope | None = None
) -> None:
    """The deadline of one order's status has passed (``store.deadlines``): unpaid, it is
    cancelled; paid and not shipped, shipping is asked to stop the parcel (domain.expire). The
    deadline is spent, or, for an order still paid and waiting for shipping's answer, set again
    a whole SHOESHOP_SHIP_TIMEOUT on, so the question is asked until it is answered. ``cause``
    is the timer's order.deadline_passed (``deadline_passed``; by default one without a trace
    context)."""
    cause = cause or deadline_passed(order_id, now)
    after = decide(
        conn,
        cause,
        outbox,
        order_id,
        lambda order: domain.expire(order, now),
        record_ignored=False,
    )
    if after is not None and after.status is Status.PAID:
        # Still waiting for shipping's answer: asked again a whole deadline later, until the
        # parcel has left or stopped (an answer lost on the way, or parked, cannot hang it).
        due = now + timedelta(seconds=get_settings().ship_timeout_s)
        store.set_deadline(conn, order_id, after.status.value, due, tracing.scheduled(order_id))
    else:
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
    unknown_order_ok: bool = False,
) -> Order | None:
    """Load the stream, let the domain decide, append, project, and announce the outcome;
    returns the order as it stands after (None: orders has not recorded it).

    An event about an order not recorded yet raises OrderNotYetKnown (retried: its order.placed
    may be on its way), unless it is order.placed or ``unknown_order_ok`` (a rejection, which
    may start a stream)."""
    history = store.load(conn, order_id)
    before = domain.fold(history)
    if before is None and cause.name != "order.placed" and not unknown_order_ok:
        # Overtook the order it is about (a relayed order.placed can arrive late): wait.
        raise OrderNotYetKnown(f"order {order_id} is not known yet")
    new_events = decision(before)
    if not new_events:
        if before is None or not record_ignored:
            return before
        new_events = domain.ignored(before, cause.name)
    now = utcnow()
    store.append(conn, order_id, len(history), new_events, cause, now)
    projections.apply_live(conn, before, new_events, now)
    after = domain.fold([*history, *new_events])
    assert after is not None
    _keep_deadline(conn, before, after, now)
    for message in announce(before, after, new_events, token, cause):
        outbox.emit(message)
    return after


def _keep_deadline(conn: Connection, before: Order | None, after: Order, now: datetime) -> None:
    """A timer exists exactly while the order is in a status orders must see it leave: waiting
    for its payment (due at the payment's deadline) or paid and waiting for its parcel to leave
    (``SHOESHOP_SHIP_TIMEOUT`` after it was paid). PLACED is the shop's to time (it holds the
    stock); SHIPPED and CANCELLED are final."""
    if before is not None and before.status is after.status:
        return
    if after.status is Status.PAYMENT_PENDING and after.payment_due_at:
        due = datetime.fromisoformat(after.payment_due_at)
    elif after.status is Status.PAID:
        due = now + timedelta(seconds=get_settings().ship_timeout_s)
    else:
        if before is not None:
            store.clear_deadline(conn, after.order_id)
        return
    # The deadline keeps the trace context of the event that set it (a create span inside its
    # processing), which the timer's order.deadline_passed continues (workers.orders.timer).
    traceparent = tracing.scheduled(after.order_id)
    store.set_deadline(conn, after.order_id, after.status.value, due, traceparent)
