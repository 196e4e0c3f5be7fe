"""What the shipping component does: pack a parcel, send it off, or stop it if asked in time."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from config.settings import get_settings
from workers.messaging import contracts
from workers.messaging.envelope import Envelope, event_type, utcnow
from workers.messaging.erasure import (
    erase_outbox,
    erased_address,
    erased_among,
    lock_orders,
    remember_erased,
)
from workers.messaging.outbox import Outbox
from workers.shipping import carriers, store

SOURCE = "/shipping"


def on_shipment_requested(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    """Pack the parcel (its contract guarantees an address with a country, which picks the
    carrier); with no packing delay it leaves at once."""
    order_id = event.data["order_id"]
    address = event.data["shipping_address"]
    lock_orders(conn, [order_id])
    if erased_among(conn, store.erased_orders, [order_id]):
        address = erased_address(address)  # its customer was erased before it came
    if store.find(conn, order_id) is not None:
        return  # one parcel per order; a cancellation that came first also left its row
    now = utcnow()
    delay = get_settings().packing_delay_s
    store.add(
        conn,
        id=str(uuid.uuid4()),
        order_id=order_id,
        status=store.PACKING,
        address=address,
        items=list(event.data["items"]),
        ready_at=now + timedelta(seconds=delay),
    )
    if delay <= 0:
        dispatch(conn, order_id, now, outbox, cause=event)


def on_shipment_cancellation_requested(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    """Stop the parcel if it has not left. Asked again (orders' deadline asks until it hears),
    answer with the parcel's state: stopped again, or its dispatch again (the first answer may
    be what was lost); orders takes each answer once."""
    order_id = event.data["order_id"]
    shipment = store.find(conn, order_id)
    if shipment is None:
        store.add(conn, id=str(uuid.uuid4()), order_id=order_id, status=store.CANCELLED)
    elif shipment.status == store.PACKING:
        store.set_status(conn, shipment.id, store.CANCELLED)
    elif shipment.status == store.DISPATCHED:
        outbox.emit(contracts.new_event(_dispatched(shipment), source=SOURCE, cause=event))
        return
    cancelled = contracts.ShipmentCancelled(order_id=order_id)
    outbox.emit(contracts.new_event(cancelled, source=SOURCE, cause=event))


def _dispatched(shipment: store.Shipment) -> contracts.ShipmentDispatched:
    assert shipment.carrier is not None and shipment.tracking_number is not None
    return contracts.ShipmentDispatched(
        order_id=shipment.order_id,
        shipment_id=shipment.id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
    )


def on_customer_erased(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    """Erase the customer's address from the parcels of the orders named, and from the events
    about them in the outbox; carrier, tracking number and times stay. The orders are
    remembered as erased, so a parcel requested afterwards is packed with its country only."""
    order_ids = list(event.data["order_ids"])
    lock_orders(conn, order_ids)
    remember_erased(conn, store.erased_orders, order_ids, utcnow())
    store.erase_addresses(conn, order_ids)
    erase_outbox(conn, order_ids)


def dispatch(
    conn: Connection, order_id: str, now: datetime, outbox: Outbox, cause: Envelope | None = None
) -> None:
    """Hand a packed parcel to the carrier, once."""
    shipment = store.find(conn, order_id)
    if shipment is None or shipment.status != store.PACKING:
        return
    carrier = carriers.carrier_for(str((shipment.address or {}).get("country", "")))
    tracking = carriers.tracking_number(carrier, shipment.id)
    store.set_status(
        conn,
        shipment.id,
        store.DISPATCHED,
        carrier=carrier,
        tracking_number=tracking,
        dispatched_at=now,
    )
    data = _dispatched(replace(shipment, carrier=carrier, tracking_number=tracking))
    source = cause or Envelope(
        type=event_type("shipment.packed"),
        source=SOURCE,
        subject=order_id,
        data={},
        correlationid=order_id,
    )
    outbox.emit(contracts.new_event(data, source=SOURCE, cause=source))
