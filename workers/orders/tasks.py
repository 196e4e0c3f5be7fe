"""The orders component's Celery tasks: its subscribers, registered from the subscription
table (see consumer), and the payment deadlines' sweep."""

from __future__ import annotations

import logging

from config.celery import app
from workers.messaging.consumer import register_subscribers
from workers.messaging.envelope import utcnow
from workers.orders import handlers, timer

COMPONENT = "orders"
log = logging.getLogger(__name__)


register_subscribers(app, COMPONENT, handlers)


@app.task(name="orders.sweep_payment_deadlines")
def sweep_payment_deadlines() -> int:
    """Run by beat every few seconds; the deadlines themselves live in the database."""
    expired = timer.sweep(app, utcnow())
    if expired:
        log.info("cancelled %d order(s) whose payment did not arrive in time", expired)
    return expired
