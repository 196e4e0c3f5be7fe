"""What the shop does with the events it hears: log them, fold them into its view of each order."""

from __future__ import annotations

from sqlalchemy import Connection

from shop import readmodel
from workers.messaging.envelope import Envelope, require
from workers.messaging.errors import InvalidEvent
from workers.messaging.outbox import Outbox


def on_order_status_changed(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    require(event.data, "order_id", "status")
    if event.data["status"] not in readmodel.RANK:
        raise InvalidEvent(f"status {event.data['status']!r} is not an order status")
    shipment = event.data.get("shipment")
    if shipment is not None:
        if not isinstance(shipment, dict):
            raise InvalidEvent("shipment must be an object with carrier and tracking_number")
        require(shipment, "carrier", "tracking_number")
    _hear(conn, event)


def on_shipment_dispatched(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    require(event.data, "order_id", "carrier", "tracking_number")
    _hear(conn, event)


def _hear(conn: Connection, event: Envelope) -> None:
    readmodel.remember(conn, event)
    readmodel.apply(conn, event, live=True)
