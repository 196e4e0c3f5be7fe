"""Release 0.1.0: its tables as its create_all made them (workers.schema.release_0_1_0)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table

from workers.schema import release_0_1_0

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()
release_0_1_0.kit_tables(metadata)
Table(
    "order_events",
    metadata,
    Column("stream_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("type", String(50), nullable=False),
    Column("data", JSON, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("causation_id", String(36), nullable=False),
    Column("correlation_id", String(36), nullable=False),
)
Table(
    "payment_deadlines",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
)
Table(
    "order_list",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("reason", String(50), nullable=True),
    Column("customer_name", String(100), nullable=False),
    Column("pairs", Integer, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Table(
    "sales",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("size", String(8), primary_key=True),
    Column("pairs", Integer, nullable=False),
    Column("revenue_cents", Integer, nullable=False),
)


def upgrade() -> None:
    release_0_1_0.create(metadata)


def downgrade() -> None:
    release_0_1_0.drop(metadata)
