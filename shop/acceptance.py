"""The shop's acceptance timer: an order orders has not taken up in time is cancelled.

The shop holds an order's stock from checkout until orders announces a status. An order whose
order.placed never gets there (lost, unreadable, parked) would hold it for ever: past
``SHOESHOP_ACCEPT_TIMEOUT`` the shop asks orders to cancel it (``order.cancellation_requested``,
reason ``not_accepted``), which orders treats as final even for an order it never recorded. The
deadline is a row of ``acceptance_deadlines``, written with the order and removed when orders'
first status arrives, so a restart loses no timer.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import Celery
from sqlalchemy import bindparam, delete, select

from shop import live, readmodel
from shop.tables import acceptance_deadlines, orders
from workers.messaging import contracts, tracing
from workers.messaging.database import engine_for
from workers.messaging.unit_of_work import publish_committed, run_committed_effects, unit_of_work

log = logging.getLogger(__name__)

SOURCE = "/shop"
NOT_ACCEPTED = "not_accepted"
BATCH = 500
# The span of the timer acting on one deadline (workers.messaging.tracing.continued).
TIMER_SPAN = "acceptance deadline passed"

_DUE = (
    select(acceptance_deadlines.c.order_id, acceptance_deadlines.c.traceparent)
    .where(acceptance_deadlines.c.due_at <= bindparam("now"))
    .order_by(acceptance_deadlines.c.due_at)
    .limit(BATCH)
)
_SPENT = delete(acceptance_deadlines).where(
    acceptance_deadlines.c.order_id == bindparam("order_id")
)
_STATUS = select(orders.c.status).where(orders.c.id == bindparam("order_id")).with_for_update()


def sweep(app: Celery, now: datetime) -> int:
    """Ask orders to cancel every order still PLACED past its deadline (``now``: the clock is a
    parameter, so tests can move it); returns how many were asked. Each order in a transaction
    of its own, the deadline spent in it: asked once."""
    with engine_for("shop").connect() as conn:
        due = list(conn.execute(_DUE, {"now": now}))
    asked = 0
    for order_id, traceparent in due:
        # In the order's trace: under the context of the order.placed that set the deadline.
        with tracing.continued(traceparent, TIMER_SPAN, order_id):
            if _ask_to_cancel(app, order_id):
                asked += 1
    if asked:
        log.warning("asked orders to cancel %d order(s) it had not taken up in time", asked)
    return asked


def _ask_to_cancel(app: Celery, order_id: str) -> bool:
    """Spend the order's deadline and, if it is still PLACED, ask orders to cancel it; returns
    whether it asked."""
    with unit_of_work("shop") as outbox:
        conn = outbox.conn
        conn.execute(_SPENT, {"order_id": order_id})
        if conn.execute(_STATUS, {"order_id": order_id}).scalar() != "PLACED":
            return False
        data = contracts.OrderCancellationRequested(order_id=order_id, reason=NOT_ACCEPTED)
        event = tracing.stamped(contracts.new_event(data, source=SOURCE, subject=order_id))
        readmodel.remember(conn, event)
        readmodel.apply(conn, event, live=True)
        outbox.emit(event)
        live.announce_after_commit(app, outbox, conn, order_id)
    publish_committed(app, "shop", outbox.emitted)
    run_committed_effects(outbox)
    return True
