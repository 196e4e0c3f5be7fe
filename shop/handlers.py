"""What the shop does with the events it hears: keep its order view and its stock current."""

from __future__ import annotations

from sqlalchemy import Connection

from shop import readmodel
from workers.messaging.envelope import Envelope, require
from workers.messaging.errors import InvalidEvent
from workers.messaging.outbox import Outbox


def on_order_status_changed(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    require(event.data, "order_id", "status")
    status = event.data["status"]
    if status not in readmodel.RANK:
        raise InvalidEvent(f"status {status!r} is not an order status")
    readmodel.record_in_timeline(conn, event)
    readmodel.apply_status(conn, event.data["order_id"], status, event.data.get("reason"))


def on_shipment_dispatched(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    require(event.data, "order_id", "carrier", "tracking_number")
    readmodel.record_in_timeline(conn, event)
    readmodel.apply_dispatch(
        conn, event.data["order_id"], event.data["carrier"], event.data["tracking_number"]
    )
