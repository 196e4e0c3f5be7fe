"""The shipping component's Celery tasks: thin shells around its handlers."""

from __future__ import annotations

from typing import Any

from config.celery import app
from workers.messaging.consumer import consume
from workers.shipping import handlers


@app.task(name="shipping.on_shipment_requested", bind=True)
def on_shipment_requested(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, "shipping", handlers.on_shipment_requested)
