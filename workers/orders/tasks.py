"""The orders component's Celery tasks: thin shells around its handlers."""

from __future__ import annotations

from typing import Any

from config.celery import app
from workers.messaging.consumer import consume
from workers.orders import handlers

COMPONENT = "orders"


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
