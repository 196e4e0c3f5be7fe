"""The tables of release 0.1.0, frozen: what its ``create_all`` made, for the first revision of
every component's history. Never edit this file; later schema changes are new revisions."""

from __future__ import annotations

from alembic import op
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, inspect

from workers.schema.revision import SchemaError


class NotARelease010Database(SchemaError):
    """A table of the first revision exists with other columns than release 0.1.0 gave it."""


def kit_tables(metadata: MetaData) -> None:
    """Add the kit's outbox and inbox, which every component's database holds, to ``metadata``."""
    Table(
        "outbox",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("id", String(36), nullable=False, unique=True),
        Column("type", String(100), nullable=False),
        Column("subject", String(36), nullable=False),
        Column("event", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True, index=True),
    )
    Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("consumer", String(100), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False),
    )


def create(metadata: MetaData) -> None:
    """Create the tables of ``metadata`` that do not exist yet, as 0.1.0 did on first use.

    A database made by release 0.1.0 has them already (without a version table): it is adopted
    as it is, once each of its tables is checked to have 0.1.0's columns.

    Raises NotARelease010Database naming the table and the columns that differ.
    """
    bind = op.get_bind()
    inspector = inspect(bind)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        found = {column["name"] for column in inspector.get_columns(table.name)}
        expected = {column.name for column in table.columns}
        if found != expected:
            raise NotARelease010Database(
                f"table {table.name!r} has columns {sorted(found)}, release 0.1.0 made "
                f"{sorted(expected)}"
            )
    metadata.create_all(bind, checkfirst=True)


def drop(metadata: MetaData) -> None:
    metadata.drop_all(op.get_bind())
