"""The shop's subscriber tasks: thin shells around its handlers."""

from __future__ import annotations

from typing import Any

from config.celery import app
from shop import handlers
from workers.messaging.consumer import consume


@app.task(name="shop.on_order_status_changed", bind=True)
def on_order_status_changed(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, "shop", handlers.on_order_status_changed)


# No longer subscribed (order.status_changed(SHIPPED) carries the parcel); still registered so
# that messages sent by an older release, waiting on the broker during an upgrade, are applied.
@app.task(name="shop.on_shipment_dispatched", bind=True)
def on_shipment_dispatched(self: Any, event: dict[str, Any]) -> None:
    consume(self, event, "shop", handlers.on_shipment_dispatched)
