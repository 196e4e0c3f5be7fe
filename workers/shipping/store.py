"""The shipping component's tables: one shipment per order."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Connection, DateTime, MetaData, String, Table, insert, select

from workers.messaging import database
from workers.messaging.envelope import utcnow

metadata = MetaData()

shipments = Table(
    "shipments",
    metadata,
    Column("id", String(36), primary_key=True),
    # One shipment per order, whatever happens upstream.
    Column("order_id", String(36), nullable=False, unique=True),
    Column("carrier", String(50), nullable=False),
    Column("tracking_number", String(50), nullable=False),
    Column("address", JSON, nullable=False),
    Column("items", JSON, nullable=False),
    Column("dispatched_at", DateTime(timezone=True), nullable=False),
)

database.register("shipping", metadata)


def find_for_order(conn: Connection, order_id: str) -> dict[str, str] | None:
    row = conn.execute(
        select(shipments.c.id, shipments.c.carrier, shipments.c.tracking_number).where(
            shipments.c.order_id == order_id
        )
    ).first()
    if row is None:
        return None
    return {"shipment_id": row.id, "carrier": row.carrier, "tracking_number": row.tracking_number}


def add(
    conn: Connection,
    shipment_id: str,
    order_id: str,
    carrier: str,
    tracking_number: str,
    address: dict[str, str],
    items: list[dict[str, object]],
) -> None:
    conn.execute(
        insert(shipments).values(
            id=shipment_id,
            order_id=order_id,
            carrier=carrier,
            tracking_number=tracking_number,
            address=address,
            items=items,
            dispatched_at=utcnow(),
        )
    )
