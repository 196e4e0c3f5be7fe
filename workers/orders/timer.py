"""The orders' timer: each order whose status deadline has passed is looked at once (an unpaid
order is cancelled, a paid one whose parcel has not left is cancelled if shipping can stop it)."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import Celery

from workers.messaging import tracing
from workers.messaging.database import engine_for
from workers.messaging.unit_of_work import publish_committed, unit_of_work
from workers.orders import handlers, store

COMPONENT = "orders"
# The task that runs the sweep (workers.orders.tasks), named on the spans of what it decides.
TIMER_TASK = "orders.sweep_payment_deadlines"
log = logging.getLogger(__name__)


def sweep(app: Celery, now: datetime) -> int:
    """Expire every order due by ``now`` (the clock is a parameter, so tests can move it).

    Each order's order.deadline_passed is processed like a delivered event: under a
    ``process order.deadline_passed`` span in the trace context its deadline row kept, so what
    it decides joins the order's trace (workers.messaging.tracing)."""
    with engine_for(COMPONENT).connect() as conn:
        due = store.due_deadlines(conn, now)
    expired = 0
    for order_id, traceparent in due:
        cause = handlers.deadline_passed(order_id, now, traceparent)
        with tracing.processing(cause, TIMER_TASK):
            # One transaction per order: one conflicting order does not hold up the rest; it
            # is still due, so the next sweep looks at it again.
            try:
                with unit_of_work(COMPONENT) as outbox:
                    handlers.expire(outbox.conn, order_id, now, outbox, cause)
            except store.ConcurrencyConflict:
                log.info("order %s changed while its deadline was checked; next sweep", order_id)
                continue
            publish_committed(app, COMPONENT, outbox.emitted)
        expired += 1
    return expired
