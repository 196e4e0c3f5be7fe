"""The orders component's Celery tasks: thin shells around its handlers."""

from __future__ import annotations

import logging
from typing import Any

from config.celery import app
from workers.messaging.consumer import consume
from workers.messaging.envelope import utcnow
from workers.orders import handlers, timer

COMPONENT = "orders"
log = logging.getLogger(__name__)


@app.task(name="orders.on_order_placed", bind=True)
def on_order_placed(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, COMPONENT, handlers.on_order_placed)


@app.task(name="orders.on_payment_succeeded", bind=True)
def on_payment_succeeded(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, COMPONENT, handlers.on_payment_succeeded)


@app.task(name="orders.on_payment_declined", bind=True)
def on_payment_declined(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, COMPONENT, handlers.on_payment_declined)


@app.task(name="orders.on_shipment_dispatched", bind=True)
def on_shipment_dispatched(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, COMPONENT, handlers.on_shipment_dispatched)


@app.task(name="orders.on_cancellation_requested", bind=True)
def on_cancellation_requested(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, COMPONENT, handlers.on_cancellation_requested)


@app.task(name="orders.on_shipment_cancelled", bind=True)
def on_shipment_cancelled(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, COMPONENT, handlers.on_shipment_cancelled)


@app.task(name="orders.on_payment_refunded", bind=True)
def on_payment_refunded(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, COMPONENT, handlers.on_payment_refunded)


@app.task(name="orders.sweep_payment_deadlines")
def sweep_payment_deadlines() -> int:
    """Run by beat every few seconds; the deadlines themselves live in the database."""
    expired = timer.sweep(app, utcnow())
    if expired:
        log.info("cancelled %d order(s) whose payment did not arrive in time", expired)
    return expired
