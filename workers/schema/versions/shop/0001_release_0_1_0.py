"""Release 0.1.0: its tables as its create_all made them (workers.schema.release_0_1_0)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from workers.schema import release_0_1_0

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()
release_0_1_0.kit_tables(metadata)
Table(
    "products",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("brand", String(50), nullable=False),
    Column("colour", String(30), nullable=False),
    Column("hex", String(7), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("position", Integer, nullable=False),
)
Table(
    "stock",
    metadata,
    Column("sku", String(32), ForeignKey("products.sku"), primary_key=True),
    Column("size", String(8), primary_key=True),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("sold", Integer, nullable=False),
    CheckConstraint("available >= 0 AND reserved >= 0 AND sold >= 0", name="stock_not_negative"),
)
Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("reason", String(50), nullable=True),
    Column("customer", JSON, nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("items", JSON, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("card_brand", String(20), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("carrier", String(50), nullable=True),
    Column("tracking_number", String(50), nullable=True),
    Column("stock_state", String(10), nullable=False),
    Column("cancel_requested_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Table(
    "checkouts",
    metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("order_id", String(36), nullable=False),
)
Table(
    "heard_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("type", String(100), nullable=False),
    Column("event", JSON, nullable=False),
)


def upgrade() -> None:
    release_0_1_0.create(metadata)


def downgrade() -> None:
    release_0_1_0.drop(metadata)
