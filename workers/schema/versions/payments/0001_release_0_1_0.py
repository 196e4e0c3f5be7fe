"""Release 0.1.0: its tables as its create_all made them (workers.schema.release_0_1_0)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table

from workers.schema import release_0_1_0

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()
release_0_1_0.kit_tables(metadata)
Table(
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
Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("payment_id", String(36), nullable=False, unique=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("gateway_refund_id", String(64), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def upgrade() -> None:
    release_0_1_0.create(metadata)


def downgrade() -> None:
    release_0_1_0.drop(metadata)
