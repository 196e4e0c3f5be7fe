"""The payments component's tables: one row per payment, with its outcome."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

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
        insert(payments),
        {
            "id": payment_id,
            "order_id": order_id,
            "amount_cents": amount_cents,
            "currency": currency,
            "status": status,
            "charge_id": charge_id,
            "reason": reason,
            "created_at": utcnow(),
        },
    )


refunds = Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("payment_id", String(36), nullable=False, unique=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("gateway_refund_id", String(64), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


_SET_STATUS = update(payments).where(payments.c.id == bindparam("payment_id"))
_CHARGE_OF = select(payments.c.charge_id).where(
    payments.c.id == bindparam("payment_id"), payments.c.charge_id.is_not(None)
)


def charge_of(conn: Connection, payment_id: str) -> str | None:
    """The gateway's charge id for a payment that succeeded, if it did."""
    row = conn.execute(_CHARGE_OF, {"payment_id": payment_id}).first()
    return None if row is None else str(row.charge_id)


def has_refund(conn: Connection, payment_id: str) -> bool:
    """Whether a refund of the payment is recorded (a charge is refunded once, whole)."""
    query = select(refunds.c.id).where(refunds.c.payment_id == payment_id).limit(1)
    return conn.execute(query).first() is not None


def record_refund(
    conn: Connection,
    *,
    refund_id: str,
    payment_id: str,
    order_id: str,
    gateway_refund_id: str,
    amount_cents: int,
) -> None:
    conn.execute(
        insert(refunds),
        {
            "id": refund_id,
            "payment_id": payment_id,
            "order_id": order_id,
            "gateway_refund_id": gateway_refund_id,
            "amount_cents": amount_cents,
            "created_at": utcnow(),
        },
    )
    conn.execute(_SET_STATUS, {"payment_id": payment_id, "status": "refunded"})
