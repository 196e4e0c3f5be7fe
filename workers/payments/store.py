"""The payments component's tables: one row per payment, with its outcome."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, String, Table, insert

from workers.messaging import database
from workers.messaging.envelope import utcnow

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("charge_id", String(64), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

database.register("payments", metadata)


def record(
    conn: Connection,
    *,
    payment_id: str,
    order_id: str,
    amount_cents: int,
    currency: str,
    status: str,
    charge_id: str | None = None,
    reason: str | None = None,
) -> None:
    conn.execute(
        insert(payments).values(
            id=payment_id,
            order_id=order_id,
            amount_cents=amount_cents,
            currency=currency,
            status=status,
            charge_id=charge_id,
            reason=reason,
            created_at=utcnow(),
        )
    )
