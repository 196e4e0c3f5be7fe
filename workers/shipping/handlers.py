"""What the shipping component does with a shipment request: dispatch it once."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection

from workers.messaging.envelope import Envelope, require
from workers.messaging.errors import InvalidEvent
from workers.messaging.outbox import Outbox
from workers.shipping import carriers, store

SOURCE = "/shipping"


def on_shipment_requested(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    require(event.data, "order_id", "shipping_address", "items")
    order_id = str(event.data["order_id"])
    address = event.data["shipping_address"]
    if not isinstance(address, dict) or not address.get("country"):
        raise InvalidEvent("shipping_address.country is missing")
    if store.find_for_order(conn, order_id) is not None:
        return  # already dispatched under another request: one parcel per order
    shipment_id = str(uuid.uuid4())
    carrier = carriers.carrier_for(str(address["country"]))
    tracking = carriers.tracking_number(carrier, shipment_id)
    store.add(conn, shipment_id, order_id, carrier, tracking, address, list(event.data["items"]))
    outbox.emit(
        event.caused(
            "shipment.dispatched",
            SOURCE,
            {
                "order_id": order_id,
                "shipment_id": shipment_id,
                "carrier": carrier,
                "tracking_number": tracking,
            },
        )
    )
