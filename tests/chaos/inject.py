"""Faults sent straight to the broker, run as `python -m tests.chaos.inject` in the shop's env."""

from __future__ import annotations

import json
import sys
import uuid

from sqlalchemy import select

from config.celery import app
from tests.support.integration import publish_raw
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope, event_type
from workers.messaging.publisher import publish, task_id_for
from workers.messaging.subscriptions import recipients
from workers.messaging.tables import outbox

EMITTERS = ("shop", "orders", "payments", "shipping")
# One subscriber task per queue, and the event type it subscribes to.
TARGETS = {
    "shop": ("shop.on_order_status_changed", "order.status_changed"),
    "orders": ("orders.on_order_placed", "order.placed"),
    "payments": ("payments.on_payment_requested", "payment.requested"),
    "shipping": ("shipping.on_shipment_requested", "shipment.requested"),
}


def resend_outboxes() -> list[str]:
    """Publish every event any outbox ever held once more; returns the task ids sent.

    A task id is derived from the event and the subscriber, so the copy carries the same id as
    the original and the worker logs show both deliveries under it.
    """
    sent: list[str] = []
    for component in EMITTERS:
        with engine_for(component).connect() as conn:
            rows = conn.execute(select(outbox.c.event).order_by(outbox.c.seq)).scalars().all()
        events = [Envelope.from_dict(row) for row in rows]
        publish(app, events)
        sent += [task_id_for(e, task) for e in events for task in recipients(e)]
    return sent


def poison(queue: str, kind: str, subject: str | None = None) -> str:
    """Send one bad message to ``queue``'s subscriber, about order ``subject`` (a new id when
    None); returns the subject it carries."""
    task, name = TARGETS[queue]
    subject = subject or str(uuid.uuid4())
    if kind == "not-json":
        publish_raw(app, task, queue, b"\x80\x04 this is not JSON {")
        return subject
    event = Envelope(
        type=event_type("bogus.happened") if kind == "unknown-type" else event_type(name),
        source="/chaos",
        subject=subject,
        correlationid=subject,
        data={"order_id": subject},  # a schema violation for every subscriber
    )
    app.send_task(task, args=[event.to_dict()], queue=queue)
    return subject


def main(argv: list[str]) -> None:
    if argv[:1] == ["resend"]:
        print(json.dumps(resend_outboxes()))
    elif argv[:1] == ["poison"]:
        print(poison(argv[1], argv[2], *argv[3:4]))
    else:
        raise SystemExit(
            "usage: inject resend | poison <queue> <not-json|unknown-type|schema> [subject]"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
