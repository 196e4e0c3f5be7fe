"""The shipping component's tables: one shipment per order, packing → dispatched | cancelled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from workers.messaging.erasure import erased_address
from workers.messaging.errors import TransientError
from workers.messaging.tables import erased_orders_table

metadata = MetaData()

# Orders whose customer.erased came here: data about them that arrives later is kept erased.
erased_orders = erased_orders_table(metadata)

PACKING, DISPATCHED, CANCELLED = "packing", "dispatched", "cancelled"

shipments = Table(
    "shipments",
    metadata,
    Column("id", String(36), primary_key=True),
    # One shipment per order, whatever happens upstream; a cancellation that arrives first
    # leaves a cancelled row behind, so a late request cannot ship the parcel after all.
    Column("order_id", String(36), nullable=False, unique=True),
    Column("status", String(12), nullable=False),
    Column("carrier", String(50), nullable=True),
    Column("tracking_number", String(50), nullable=True),
    Column("address", JSON, nullable=True),
    Column("items", JSON, nullable=True),
    Column("ready_at", DateTime(timezone=True), nullable=True, index=True),
    Column("dispatched_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class Shipment:
    id: str
    order_id: str
    status: str
    carrier: str | None
    tracking_number: str | None
    address: dict[str, str] | None


_FIND = select(
    shipments.c.id,
    shipments.c.order_id,
    shipments.c.status,
    shipments.c.carrier,
    shipments.c.tracking_number,
    shipments.c.address,
).where(shipments.c.order_id == bindparam("order_id"))
# The key is not named after a column: the columns named in the parameters are the ones SET.
_SET_STATUS = update(shipments).where(shipments.c.id == bindparam("shipment_key"))


def find(conn: Connection, order_id: str) -> Shipment | None:
    row = conn.execute(_FIND, {"order_id": order_id}).first()
    return None if row is None else Shipment(*row)


class ParcelRace(TransientError):
    """Another event about the same order (its shipment request, or a cancellation that came
    first) added the order's one parcel row in a transaction that committed first; the retry
    finds the row and goes on from there."""


def add(conn: Connection, **values: Any) -> None:
    """Add the order's parcel row. Raises ParcelRace when another transaction added it first."""
    try:
        conn.execute(insert(shipments), values)
    except IntegrityError as exc:
        raise ParcelRace(f"order {values.get('order_id')} got its parcel row meanwhile") from exc


def set_status(conn: Connection, shipment_id: str, status: str, **values: Any) -> None:
    conn.execute(_SET_STATUS, {"shipment_key": shipment_id, "status": status, **values})


def erase_addresses(conn: Connection, order_ids: Sequence[str]) -> None:
    """The parcels of these orders keep their country only (erasure.erased_address)."""
    query = select(shipments.c.id, shipments.c.address).where(
        shipments.c.order_id.in_(list(order_ids))
    )
    for row in conn.execute(query).all():
        if row.address is not None:
            conn.execute(
                update(shipments)
                .where(shipments.c.id == row.id)
                .values(address=erased_address(row.address))
            )


def ready(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    """Orders whose parcel is packed and waiting to leave."""
    query = (
        select(shipments.c.order_id)
        .where(shipments.c.status == PACKING, shipments.c.ready_at <= now)
        .order_by(shipments.c.ready_at)
        .limit(limit)
    )
    return [row.order_id for row in conn.execute(query)]
