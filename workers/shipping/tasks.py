"""The shipping component's Celery tasks: its subscribers, registered from the subscription
table (see consumer), and the sending off of packed parcels."""

from __future__ import annotations

from datetime import datetime

from config.celery import app
from workers.messaging.consumer import register_subscribers
from workers.messaging.database import engine_for
from workers.messaging.envelope import utcnow
from workers.messaging.unit_of_work import publish_committed, unit_of_work
from workers.shipping import handlers, store

COMPONENT = "shipping"


register_subscribers(app, COMPONENT, handlers)


@app.task(name="shipping.dispatch_packed")
def dispatch_packed() -> int:
    """Run by beat: send off every parcel whose packing time is over."""
    return send_off_packed(utcnow())


def send_off_packed(now: datetime) -> int:
    """Dispatch what is packed by ``now`` (the clock is a parameter, so tests can move it)."""
    with engine_for(COMPONENT).connect() as conn:
        due = store.ready(conn, now)
    for order_id in due:
        with unit_of_work(COMPONENT) as outbox:
            handlers.dispatch(outbox.conn, order_id, now, outbox)
        publish_committed(app, COMPONENT, outbox.emitted)
    return len(due)
