"""Release 0.1.0: its tables as its create_all made them (workers.schema.release_0_1_0)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, String, Table, Text

from workers.schema import release_0_1_0

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()
release_0_1_0.kit_tables(metadata)
Table(
    "dead_letters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=True, index=True),
    Column("subject", String(100), nullable=True, index=True),
    Column("task", String(100), nullable=False),
    Column("queue", String(50), nullable=False),
    Column("event", JSON, nullable=True),
    Column("raw", Text, nullable=True),
    Column("exception", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("traceback", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    Index("ix_dead_letters_event_task", "event_id", "task"),
)
Table(
    "dead_letter_actions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("dead_letter_id", String(36), nullable=False, index=True),
    Column("action", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", Text, nullable=False),
)


def upgrade() -> None:
    release_0_1_0.create(metadata)


def downgrade() -> None:
    release_0_1_0.drop(metadata)
