"""Release 0.1.0: its tables as its create_all made them (workers.schema.release_0_1_0)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table

from workers.schema import release_0_1_0

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()
release_0_1_0.kit_tables(metadata)
Table(
    "shipments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, unique=True),
    Column("status", String(12), nullable=False),
    Column("carrier", String(50), nullable=True),
    Column("tracking_number", String(50), nullable=True),
    Column("address", JSON, nullable=True),
    Column("items", JSON, nullable=True),
    Column("ready_at", DateTime(timezone=True), nullable=True, index=True),
    Column("dispatched_at", DateTime(timezone=True), nullable=True),
)


def upgrade() -> None:
    release_0_1_0.create(metadata)


def downgrade() -> None:
    release_0_1_0.drop(metadata)
