"""The orders component's Celery tasks: its subscribers, registered from the subscription
table (see consumer), and the sweep of its deadlines."""

from __future__ import annotations

import logging

from config.celery import app
from workers.messaging.consumer import register_subscribers
from workers.messaging.envelope import utcnow
from workers.orders import handlers, timer

COMPONENT = "orders"
log = logging.getLogger(__name__)


register_subscribers(app, COMPONENT, handlers)


# The name says payment deadlines: the first it swept. It sweeps every status's deadline now,
# under the same name, so a beat message sent before an upgrade still finds its task.
@app.task(name="orders.sweep_payment_deadlines")
def sweep_deadlines() -> int:
    """Run by beat every few seconds; the deadlines themselves live in the database."""
    expired = timer.sweep(app, utcnow())
    if expired:
        log.info("looked at %d order(s) past the deadline of their status", expired)
    return expired
